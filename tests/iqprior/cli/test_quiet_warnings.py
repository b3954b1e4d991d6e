"""Third-party deprecation notices do not reach the user in normal runs; ``--debug`` shows them."""
import warnings

import iqprior.cli.weights as cli_weights
from iqprior.cli import main


def _noisy_run(args):
    # what facexlib's network builders trigger inside torchvision, and one warning of our own
    warnings.warn_explicit("The parameter 'pretrained' is deprecated since 0.13", UserWarning,
                           "torchvision/models/_utils.py", 207, module="torchvision.models._utils")
    warnings.warn_explicit("old API", DeprecationWarning, "facexlib/x.py", 1, module="facexlib.x")
    warnings.warn_explicit("old API", FutureWarning, "basicsr/x.py", 1, module="basicsr.x")
    warnings.warn_explicit("skipped 2 unreadable line(s)", UserWarning, "iqprior/x.py", 1, module="iqprior.x")
    return 0


def _run(monkeypatch, argv):
    monkeypatch.setattr(cli_weights, "run", _noisy_run)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert main(argv) == 0
    return [str(w.message) for w in rec]


def test_normal_run_hides_third_party_deprecations(monkeypatch):
    assert _run(monkeypatch, ["weights", "list"]) == ["skipped 2 unreadable line(s)"]
    # and the filters are restored after main() returns
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        warnings.warn_explicit("x is deprecated", UserWarning, "t.py", 1, module="torchvision.x")
    assert len(rec) == 1


def test_debug_shows_them(monkeypatch):
    assert len(_run(monkeypatch, ["weights", "list", "--debug"])) == 4
