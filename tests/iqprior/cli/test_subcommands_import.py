"""Every sub-command of ``iqprior`` imports and registers its parser (a broken one must not silently vanish)."""
import importlib

import pytest

from iqprior import cli


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_every_subcommand_imports_and_adds_its_parser(name):
    mod = importlib.import_module(f"iqprior.cli.{cli.SUBCOMMANDS[name]}")
    assert callable(mod.add_parser)
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert name in sub.choices


def test_a_broken_subcommand_module_is_an_error(monkeypatch):
    monkeypatch.setitem(cli.SUBCOMMANDS, "nonexistent", "no_such_module")
    with pytest.raises(ImportError):
        cli.build_parser()
