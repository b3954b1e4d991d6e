"""mkdocs hook: the pages and tables generated from the code, so the docs cannot drift from it.

- ``cli/<command>.md``: one page per ``iqprior`` sub-command, the ``--help`` of the argparse parser
  that :func:`iqprior.cli.build_parser` builds (nested sub-commands such as ``bench quality`` get a
  section each). A sub-command added to ``iqprior.cli.SUBCOMMANDS`` gets its page and nav entry
  without touching the docs.
- ``<!-- iqprior:adapters -->``: the adapters table, one row per name of
  :func:`adapters.list_adapters`, read from :func:`adapters.spec` (``adapters/specs.py``).
- ``<!-- iqprior:members -->``, ``<!-- iqprior:fullref -->``, ``<!-- iqprior:presets -->``: the IQA
  metric tables from :data:`iqprior.scoring.specs.SPECS` and ``PRESETS``.
- ``<!-- iqprior:auto-families -->``: docs/auto.md's families table (:func:`adapters.auto.table.families_markdown`).
- After the build, the HTML is checked to list every adapter and every metric; a missing one fails
  the build.

Pages other sessions add at the top of ``docs/`` (``OPTIONAL_PAGES``) join the nav when they exist.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
CLI_NAV_TITLE = "Command line"
CLI_INDEX = "cli/index.md"
#: command -> the guide page (relative to docs/) that explains it; a command without one links to
#: ``<command>.md`` at the top of docs/ when that page exists.
GUIDES = {
    "score": "concepts/scoring.md",
    "restore": "guides/restoring.md",
    "train": "guides/training.md",
    "finetune": "guides/finetuning.md",
    "bench": "guides/evaluating.md",
    "weights": "guides/weights.md",
}
#: pages written by other work that join the nav, titled by their first heading, when present:
#: file -> nav section; any other ``experiments/*.md`` joins the Experiments section
OPTIONAL_PAGES = {
    "auto.md": "Guides",
    "export.md": "Guides",
    "demo.md": "Guides",
    "security.md": "Architecture",
    "internals.md": "Architecture",
}
HELP_WIDTH = "100"
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc):(?=<code>)")


def _import_path() -> None:
    """Document the checkout the site is built from, not whatever copy is installed."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------------------------- CLI pages
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{sub-command: its one-line help}`` as given to ``add_parser(help=...)``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def cli_commands() -> dict[str, argparse.ArgumentParser]:
    """``{name: parser}`` of every ``iqprior`` sub-command, in the parser's order."""
    _import_path()
    from iqprior.cli import build_parser

    return _subparsers(build_parser())


def _fence(text: str) -> str:
    return f"```text\n{text}\n```\n"


def cli_page(name: str, parser: argparse.ArgumentParser, summary: str, docs_dir: Path) -> str:
    guide = GUIDES.get(name) or (f"{name}.md" if (docs_dir / f"{name}.md").is_file() else None)
    out = [f"# iqprior {name}\n", f"{summary[:1].upper()}{summary[1:]}.\n" if summary else ""]
    if guide and (docs_dir / guide).is_file():
        out.append(f"How to use it, with examples: [{guide.rsplit('/', 1)[-1][:-3]}](../{guide}).\n")
    out.append("*Generated from the command's own `--help` when the docs are built.*\n")
    out.append(_fence(_help(parser)))
    nested = _subparsers(parser)
    nested_help = _summaries(parser)
    for sub, p in nested.items():
        out.append(f"## iqprior {name} {sub}\n")
        if nested_help.get(sub):
            out.append(f"{nested_help[sub][:1].upper()}{nested_help[sub][1:]}.\n")
        out.append(_fence(_help(p)))
    return "\n".join(part for part in out if part)


def cli_index(commands: dict[str, argparse.ArgumentParser]) -> str:
    from iqprior.cli import build_parser

    summaries = _summaries(build_parser())
    rows = ["| command | what it does |", "|---|---|"]
    rows += [f"| [`iqprior {n}`]({n}.md) | {summaries.get(n, '')} |" for n in commands]
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------------ tables
def _code(text) -> str:
    return f"`{text}`" if text not in (None, "") else "—"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def licence_cell(licence: str) -> str:
    """A licence with its flag in bold (``iqprior.licences``): non-commercial and unlicensed ones stand out."""
    from iqprior.licences import licence_flag

    flag = licence_flag(licence)
    return f"{licence or '—'} **{flag.lower()}**" if flag else (licence or "—")


def _size(s) -> str:
    """Native size, or "any" with the size requirements the adapter brings an input to."""
    if s.native_size:
        return f"{s.native_size}²"
    req = s.size_requirements
    if req is None or req.none:
        return "any" if s.task else "from the adapter"
    return f"any (runs at multiples of {req.multiple_of}, ≥ {req.minimum})"


def _level_input(s) -> str:
    """How the adapter takes a level: the "+" embedding's module path (shape), built in, from the file."""
    from adapters.specs import BUILT_IN, FROM_FILE, MODULE

    shape = f" ({'×'.join(map(str, s.condition_shape))})" if s.condition_shape else ""
    if s.condition == MODULE:
        return f"embedding added at {_code(s.condition_at)}{shape}"
    if s.condition == BUILT_IN:
        return f"built in{shape}"
    if s.condition == FROM_FILE:
        return "per architecture in the file ([auto](auto.md))"
    return "—"


def adapters_table() -> str:
    """One row per adapter of :func:`adapters.list_adapters`, every fact from its spec."""
    _import_path()
    import adapters

    rows = ["| adapter | task | size | files it reads | \"+\" of | level input | controls | ONNX export "
            "| fast path | licence | source |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in adapters.list_adapters():
        s = adapters.spec(name)
        files = ", ".join(_code(f) for f in s.files) or "—"
        fast = s.fast_path.describe() if s.fast_path is not None else "the adapter's own (exact)"
        controls = ", ".join(_code(c) for c in s.controls or ()) or "—"
        export = f"no: {s.export_refused.split(';')[0]}" if s.export_refused else "yes"
        rows.append("| " + " | ".join(_cell(c) for c in (
            _code(name), s.task or "from the adapter", _size(s), files, _code(s.base) if s.base else "—",
            _level_input(s), controls, export, fast, licence_cell(s.licence), s.source or "—")) + " |")
    return "\n".join(rows) + "\n"


def _direction(m) -> str:
    return "↓ (flipped)" if m.lower_better else "↑"


def _weights(m) -> str:
    return ", ".join(f"`{w.file}` ({w.where})" for w in m.weights) or "none"


def _presets_of(name: str) -> str:
    from iqprior.scoring.specs import PRESETS

    return ", ".join(f"`{p}`" for p, members in PRESETS.items() if name in members) or "—"


def members_table(full_reference: bool = False) -> str:
    """No-reference members (or the full-reference metrics) of :data:`iqprior.scoring.specs.SPECS`."""
    _import_path()
    from iqprior.scoring.specs import SPECS

    head = ["metric", "paper name", "range", "direction", "weights (where)", "gradient"]
    if not full_reference:
        head.insert(2, "presets")
    head += ["licence", "note"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in SPECS.values():
        if m.full_reference != full_reference:
            continue
        lo, hi = m.score_range
        cells = [_code(m.name), m.paper_name or "—", f"{lo:g}–{hi:g}", _direction(m), _weights(m),
                 "yes" if m.differentiable else "no"]
        if not full_reference:
            cells.insert(2, _presets_of(m.name))
        cells += [licence_cell(m.licence or ""), m.note or ""]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def presets_table() -> str:
    _import_path()
    from iqprior.scoring.specs import OPTIONAL_IN_PRESET, PRESETS

    rows = ["| preset | members |", "|---|---|"]
    for p, members in PRESETS.items():
        optional = set(OPTIONAL_IN_PRESET.get(p, ()))
        cells = [f"`{m}`" + (" (optional: see its note)" if m in optional else "") for m in members]
        rows.append(f"| `{p}` | {', '.join(cells)} |")
    return "\n".join(rows) + "\n"


def requirements(*names: str) -> str:
    """`` (this version: `torch>=2.6`, ...)``: the requirement of each named package in setup.cfg."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()]
    found = [r for n in names for r in lines if re.match(rf"{re.escape(n)}\s*([<>=!~;\[]|$)", r)]
    if len(found) != len(names):
        raise PluginError(f"setup.cfg install_requires lacks one of {names}")
    return " (this version: " + ", ".join(f"`{r}`" for r in found) + ")"


def auto_families_table() -> str:
    """docs/auto.md's families table, from ``adapters.auto``'s injection table and spandrel's registry."""
    _import_path()
    from adapters.auto.table import families_markdown

    return families_markdown()


_REQUIRES = re.compile(r"<!-- iqprior:requires ([\w\- ]+) -->")

MARKERS = {
    "<!-- iqprior:adapters -->": adapters_table,
    "<!-- iqprior:members -->": members_table,
    "<!-- iqprior:fullref -->": lambda: members_table(full_reference=True),
    "<!-- iqprior:presets -->": presets_table,
    "<!-- iqprior:auto-families -->": auto_families_table,
}


# ------------------------------------------------------------------------------------------------- hooks
def _nav_has(nav, target: str) -> bool:
    if isinstance(nav, str):
        return nav == target
    if isinstance(nav, dict):
        return any(_nav_has(v, target) for v in nav.values())
    if isinstance(nav, list):
        return any(_nav_has(v, target) for v in nav)
    return False


def _title(page: Path) -> str:
    """A page's first ``# heading``, else its file name."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip().replace("`", "")
    return page.stem


def on_config(config, **kwargs):
    _import_path()
    docs_dir = Path(config["docs_dir"])
    commands = cli_commands()
    nav = config["nav"]
    for i, item in enumerate(nav):
        if isinstance(item, dict) and item.get(CLI_NAV_TITLE) == CLI_INDEX:
            nav[i] = {CLI_NAV_TITLE: [CLI_INDEX] + [{f"iqprior {n}": f"cli/{n}.md"} for n in commands]}
    optional = dict(OPTIONAL_PAGES)
    for extra in sorted((docs_dir / "experiments").glob("*.md")):  # more experiments join their section
        optional.setdefault(f"experiments/{extra.name}", "Experiments")
    for page, section in optional.items():
        if not (docs_dir / page).is_file() or _nav_has(nav, page):
            continue
        title = _title(docs_dir / page)
        for item in nav:
            if isinstance(item, dict) and section in item:
                if not isinstance(item[section], list):
                    item[section] = [item[section]]
                item[section].append({title: page})
                break
        else:
            nav.append({title: page})
    return config


def on_files(files, config, **kwargs):
    docs_dir = Path(config["docs_dir"])
    from iqprior.cli import build_parser

    summaries = _summaries(build_parser())
    for name, parser in cli_commands().items():
        files.append(File.generated(config, f"cli/{name}.md",
                                    content=cli_page(name, parser, summaries.get(name, ""), docs_dir)))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri == CLI_INDEX:
        markdown = markdown.replace("<!-- iqprior:cli -->", cli_index(cli_commands()))
    markdown = _REQUIRES.sub(lambda m: requirements(*m.group(1).split()), markdown)
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def on_page_content(html_text, page, config, files, **kwargs):
    # docstrings use Sphinx roles (:func:`x`); mkdocstrings renders the role's name as text
    return _ROLE.sub("", html_text)


def on_post_build(config, **kwargs):
    """Fail the build when a page misses an adapter or a metric of the code's tables."""
    _import_path()
    import adapters
    from iqprior.scoring.specs import SPECS

    site = Path(config["site_dir"])
    wanted = {"adapters/index.html": adapters.list_adapters(),
              "concepts/scoring/index.html": list(SPECS)}
    for page, names in wanted.items():
        text = (site / page).read_text(encoding="utf-8")
        missing = [n for n in names if f"<code>{html.escape(n)}</code>" not in text]
        if missing:
            raise PluginError(f"{page} does not list {', '.join(missing)}: is its table marker still there?")
