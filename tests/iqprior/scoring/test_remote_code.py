"""Q-Align runs hub code: never without an explicit opt-in, and then only at the pinned commit."""
import pytest

from iqprior.cli import main
from iqprior.scoring import members
from iqprior.scoring.ensemble import preset_members
from iqprior.scoring.remote_code import ENV_TRUST_REMOTE_CODE, RemoteCodeRefused

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def cache_present(monkeypatch):
    """As if the hub cache folder of q-future/one-align existed."""
    monkeypatch.setattr(members, "missing_weights", lambda spec: [])
    monkeypatch.delenv(ENV_TRUST_REMOTE_CODE, raising=False)


def test_no_opt_in_no_remote_code(cache_present, monkeypatch):
    import pyiqa

    called = []
    monkeypatch.setattr(pyiqa, "create_metric", lambda *a, **k: called.append(a))
    ok, why = members.member_available("qalign")
    assert not ok and "--trust-remote-code" in why
    assert "qalign" not in preset_members("paper")
    with pytest.raises(RemoteCodeRefused, match="trust-remote-code"):
        members.build_member("qalign")
    assert called == []


def test_branch_names_are_not_a_pin(cache_present, monkeypatch):
    monkeypatch.setenv(ENV_TRUST_REMOTE_CODE, "main")
    with pytest.raises(RemoteCodeRefused, match="40-hex"):
        members.build_member("qalign")


def test_opt_in_pins_every_from_pretrained(cache_present, monkeypatch):
    """pyiqa's qalign module (a stand-in with the same shape: transformers classes in its namespace)."""
    import sys
    import types

    import pyiqa

    seen = []

    class Model:
        @classmethod
        def from_pretrained(cls, name, **kwargs):
            seen.append((cls, kwargs))
            return cls

    class Processor(Model):
        pass

    arch = types.ModuleType("pyiqa.archs.qalign_arch")
    arch.AutoModelForCausalLM, arch.CLIPImageProcessor = Model, Processor
    monkeypatch.setitem(sys.modules, "pyiqa.archs.qalign_arch", arch)

    def fake_create_metric(name, **kwargs):  # what pyiqa's QAlign constructor does
        arch.AutoModelForCausalLM.from_pretrained("q-future/one-align", trust_remote_code=True)
        arch.CLIPImageProcessor.from_pretrained("q-future/one-align", trust_remote_code=True, revision="main")
        raise RuntimeError("stop here")

    monkeypatch.setattr(pyiqa, "create_metric", fake_create_metric)
    monkeypatch.setenv(ENV_TRUST_REMOTE_CODE, COMMIT)
    assert members.member_available("qalign")[0]
    with pytest.raises(RuntimeError, match="stop here"):
        members.build_member("qalign")
    assert [c for c, _ in seen] == [Model, Processor] and all(k["revision"] == COMMIT for _, k in seen)
    Model.from_pretrained("x")  # restored afterwards: not pinned outside the build
    assert "revision" not in seen[-1][1]


def test_cli_flag_is_scoped_and_checked(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.delenv(ENV_TRUST_REMOTE_CODE, raising=False)
    rc = main(["score", str(tmp_path), "--list-members", "--trust-remote-code", "latest"])
    assert rc == 1 and "40-hex" in capsys.readouterr().err
    assert main(["score", str(tmp_path), "--list-members", "--trust-remote-code", COMMIT]) == 0
    assert ENV_TRUST_REMOTE_CODE not in os.environ
