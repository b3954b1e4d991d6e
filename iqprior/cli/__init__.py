"""The ``iqprior`` command: ``iqprior SUBCOMMAND --help``.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``
(cheap: no heavy imports) and ``run(args) -> int``; heavy imports happen in
``run``.

Error contract: any failure of any sub-command prints one line,
``iqprior CMD: error: WHAT`` on stderr, and exits non-zero (2 for a usage
error found by argparse, 1 otherwise); ``--debug`` (on every sub-command, or
``iqprior --debug CMD``) raises it with the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..printable import printable

# sub-command -> module (inside iqprior.cli)
SUBCOMMANDS = {
    "score": "score",
    "restore": "restore",
    "train": "train",
    "finetune": "finetune",
    "bench": "bench",
    "weights": "weights",
    "export": "export",
    "demo": "demo",
}
# sub-commands that import the top-level `adapters` package
NEEDS_ADAPTERS = {"restore", "train", "finetune", "bench", "weights", "export", "demo"}


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on ``parser`` and on its nested sub-parsers, where not already there."""
    if "--debug" not in parser._option_string_actions:
        parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_debug(sub)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="iqprior", description="Image-quality prior for restoration models.")
    parser.add_argument("--version", action="version", version=f"iqprior {__version__}")
    parser.add_argument("--debug", dest="debug_all", action="store_true",
                        help="show the traceback of any error (also accepted after the sub-command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ImportError:
            continue  # a sub-command whose module is not there yet
        mod.add_parser(sub)
    for p in sub.choices.values():
        _add_debug(p)
    return parser


def check_adapters_package() -> None:
    """Fail in one line when ``import adapters`` would find another package than iqprior's.

    AdapterHub publishes a PyPI package named ``adapters`` too; installed in
    the same environment it shadows ours (or ours is missing altogether).
    """
    import importlib.util

    mod = sys.modules.get("adapters")
    if mod is not None:
        origin = getattr(mod, "__file__", None)
    else:
        spec = importlib.util.find_spec("adapters")
        origin = spec.origin if spec is not None else None
        if spec is None:
            raise ImportError("iqprior's `adapters` package is not importable; reinstall iqprior "
                              "(`pip install -e .` in its checkout)")
    folder = Path(origin).parent if origin else None
    if folder is None or not ((folder / "specs.py").is_file() and (folder / "registry.py").is_file()):
        raise ImportError(f"`import adapters` finds {folder or 'a namespace package'}, not iqprior's adapters "
                          f"(AdapterHub's PyPI package is also named `adapters`); `pip uninstall adapters`, then "
                          f"reinstall iqprior, or use a separate environment")


def error_line(e: BaseException) -> str:
    """One line for ``e``: the message of a user error, ``Type: message`` for anything else."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        msg = e.args[0]
    else:
        msg = str(e)
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        msg = f"{e.filename}: {e.strerror}"
    msg = "; ".join(line.strip() for line in msg.splitlines() if line.strip()) or repr(e)
    msg = printable(msg, limit=2000)  # file-borne text (metadata, names) cannot drive the terminal
    known = isinstance(e, (ValueError, TypeError, OSError, ImportError)) or (
        isinstance(e, KeyError) and isinstance(e.args[0] if e.args else None, str))
    return msg if known else f"{type(e).__name__}: {msg} (rerun with --debug for the traceback)"


def command_name(args: argparse.Namespace) -> str:
    name = str(getattr(args, "command", "") or "")
    nested = getattr(args, "bench_command", None)
    return f"{name} {nested}" if nested else name


THIRD_PARTY = r"^(?!iqprior|adapters|__main__)"  # a module name that is not ours


def hide_third_party_deprecations() -> None:
    """Drop deprecation notices raised inside dependencies (torchvision's ``pretrained=`` notices when
    facexlib builds its networks...): a user cannot act on them. ``--debug`` keeps them."""
    import warnings

    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)
    warnings.filterwarnings("ignore", message=r".*deprecat", category=UserWarning, module=THIRD_PARTY)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    import warnings

    debug = bool(getattr(args, "debug", False) or getattr(args, "debug_all", False))
    formatwarning = warnings.formatwarning
    quiet = warnings.catch_warnings()  # restores the filters on the way out (main() may run in-process)
    quiet.__enter__()
    if not debug:  # library warnings as one line each, not "file:line: UserWarning: ..." + source
        warnings.formatwarning = lambda message, category, *_a, **_k: f"warning: {printable(message, 2000)}\n"
        hide_third_party_deprecations()
    try:
        if args.command in NEEDS_ADAPTERS:
            check_adapters_package()
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place every failure becomes one line
        if debug:
            raise
        print(f"iqprior {command_name(args)}: error: {error_line(e)}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = formatwarning
        quiet.__exit__(None, None, None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
