"""The documentation site builds with warnings as errors and lists what the code's tables hold.

Builds the site once (``mkdocs build --strict``, as ``make docs``; mkdocs is in the ``[dev]`` extra)
into a temporary folder and reads the HTML: every adapter of ``adapters.list_adapters()`` is a row of
the adapters table, every metric of ``iqprior.scoring.specs.SPECS`` a row of the members tables, and
every ``iqprior`` sub-command has its page with its own ``--help``.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import adapters
from iqprior.cli import build_parser
from iqprior.scoring.specs import SPECS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


def _first_cells(page: Path) -> list[str]:
    """The first cell of every table row of ``page``, unescaped, ``<code>`` stripped."""
    text = page.read_text(encoding="utf-8")
    cells = re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>", text, flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def test_adapters_table_lists_every_adapter(site):
    rows = _first_cells(site / "adapters" / "index.html")
    names = adapters.list_adapters()
    assert names, "no adapter registered"
    missing = [n for n in names if n not in rows]
    assert not missing, f"adapters missing from the docs' adapters table: {missing}"
    for n in names:  # generated from the spec: the row carries the spec's own source
        assert adapters.spec(n).source.split(" ")[0] in (site / "adapters" / "index.html").read_text(encoding="utf-8")


def test_members_tables_list_every_metric(site):
    rows = _first_cells(site / "concepts" / "scoring" / "index.html")
    missing = [n for n in SPECS if n not in rows]
    assert not missing, f"metrics missing from the docs' members tables: {missing}"


def _is_subparsers(action) -> bool:
    return isinstance(action, argparse._SubParsersAction)


def test_one_page_per_cli_command(site):
    parser = build_parser()
    commands = next(a.choices for a in parser._actions if _is_subparsers(a))
    assert {"score", "restore", "train", "finetune", "bench", "weights"} <= set(commands)
    index = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for name, sub in commands.items():
        page = site / "cli" / name / "index.html"
        assert page.is_file(), f"no docs page for `iqprior {name}`"
        text = html.unescape(page.read_text(encoding="utf-8"))
        assert f"usage: iqprior {name}" in text
        for action in sub._actions:  # every flag of the command, and of its own sub-commands, is on its page
            for flag in action.option_strings:
                assert flag in text, f"`iqprior {name}` page lacks {flag}"
            nested_parsers = action.choices if _is_subparsers(action) else {}
            for nested, p in nested_parsers.items():
                assert f"usage: iqprior {name} {nested}" in text
                missing = [f for a in p._actions for f in a.option_strings if f not in text]
                assert not missing, f"`iqprior {name} {nested}` flags missing from its page: {missing}"
        assert f'href="{name}/"' in index, f"the Command line index does not link `iqprior {name}`"


def test_api_pages_render_docstrings(site):
    text = (site / "api" / "conditioning" / "index.html").read_text(encoding="utf-8")
    assert 'id="iqprior.conditioning.condition"' in text
    assert ":func:" not in text and ":class:" not in text  # Sphinx roles are stripped
    assert 'id="adapters.create"' in (site / "api" / "adapters" / "index.html").read_text(encoding="utf-8")


def test_site_fetches_nothing_from_the_network(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
        assert not re.search(r'<script[^>]+src="https?://', text), page


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details into docs/"
    text = "\n".join(lines)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert f"make {target}" in text and re.search(rf"^{target}:", makefile, flags=re.M)
    for link in re.findall(r"\]\((docs/[^)#]+)", text):  # links into the docs point at pages that exist
        assert (ROOT / link).exists(), f"README links to a missing {link}"


def test_getting_started_states_the_declared_torch_floor(site):
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    torch_req = next(r.strip() for r in cfg["options"]["install_requires"].splitlines()
                     if re.match(r"\s*torch\s*[<>=]", r))
    text = html.unescape((site / "getting-started" / "index.html").read_text(encoding="utf-8"))
    assert f"<code>{torch_req}</code>" in text
