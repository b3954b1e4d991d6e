"""The ``iqprior`` command: ``iqprior SUBCOMMAND --help``.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``
(cheap: no heavy imports) and ``run(args) -> int``; heavy imports happen in
``run``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# sub-command -> module (inside iqprior.cli)
SUBCOMMANDS = {
    "score": "score",
    "restore": "restore",
    "train": "train",
    "finetune": "finetune",
    "bench": "bench",
    "weights": "weights",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="iqprior", description="Image-quality prior for restoration models.")
    parser.add_argument("--version", action="version", version=f"iqprior {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ImportError:
            continue  # a sub-command whose module is not there yet
        mod.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, TypeError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"iqprior {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
