"""The adapter registry, the official-checkpoint loader and save_pretrained, on a tiny adapter."""
import pytest
import torch
from torch import nn

import adapters
from adapters.base import Adapter
from iqprior.checkpoint import CheckpointError, read_official_checkpoint


class TinyNet(nn.Module):
    def __init__(self, ch=4):
        super().__init__()
        self.encoder = nn.Conv2d(3, ch, 3, padding=1)
        self.decoder = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, x):
        return self.decoder(torch.relu(self.encoder(x)))


class TinyAdapter(Adapter):
    def __init__(self, ch=4, plus=False, name="tiny"):
        super().__init__(name, {"ch": ch})
        self.net = TinyNet(ch)
        if plus:
            self.enable_condition("encoder", (ch, 1, 1))

    def forward(self, x, score=None):
        return (self.run_net(x * 2 - 1, score=score) + 1) / 2


def build_tiny(ch=4):
    return TinyAdapter(ch)


def build_tiny_plus(ch=4):
    return TinyAdapter(ch, plus=True, name="tiny+")


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(adapters.registry._USER, "tiny", adapters.AdapterSpec("tiny", f"{__name__}:build_tiny"))
    monkeypatch.setitem(adapters.registry._USER, "tiny+", adapters.AdapterSpec("tiny+", f"{__name__}:build_tiny_plus"))


def test_contract_names_are_registered():
    names = adapters.list_adapters()
    for n in ["codeformer", "codeformer+", "daefr", "daefr+", "difface", "difface+", "puienet", "puienet+",
              "nu2net", "nu2net+", "iqpfr"]:
        assert n in names


def test_unknown_name_did_you_mean():
    with pytest.raises(ValueError, match="did you mean 'codeformer'"):
        adapters.create("codeformr")


def test_none_options_are_dropped_and_eval_mode():
    m = adapters.create("tiny", ch=None)
    assert m.options == {"ch": 4} and not m.training


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict", "net", None])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_file_variants_load_strictly(tmp_path, wrapper, prefix):
    src = adapters.create("tiny")
    state = {prefix + k: v for k, v in src.net.state_dict().items()}
    obj = state if wrapper is None else {wrapper: state, "epoch": 3}
    torch.save(obj, tmp_path / "official.pth")
    m = adapters.create("tiny", checkpoint=tmp_path / "official.pth")
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(m(x), src(x))
    plus = adapters.create("tiny+", checkpoint=tmp_path / "official.pth")  # "+" loads the base file too
    assert torch.equal(plus(x, score=9), src(x))


def test_wrong_and_truncated_files_give_one_clear_error(tmp_path):
    torch.save({"params_ema": {"foo.weight": torch.zeros(2)}}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match=r"missing 4: .*unexpected 1: foo.weight.*another model"):
        adapters.create("tiny", checkpoint=tmp_path / "wrong.pth")
    src = adapters.create("tiny", ch=8)
    torch.save(src.net.state_dict(), tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match="wrong shape"):
        adapters.create("tiny", checkpoint=tmp_path / "shape.pth")
    data = (tmp_path / "shape.pth").read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        adapters.create("tiny", checkpoint=tmp_path / "trunc.pth")
    with pytest.raises(FileNotFoundError):
        adapters.create("tiny", checkpoint=tmp_path / "absent.pth")


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"params": {"w": torch.zeros(1)}, "cfg": TinyNet()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="weights_only"):
        read_official_checkpoint(tmp_path / "evil.pth")


def test_plus_identity_and_save_pretrained_roundtrip(tmp_path):
    base = adapters.create("tiny")
    plus = adapters.create("tiny+")
    plus.net.load_state_dict(base.net.state_dict())
    x = torch.rand(2, 3, 8, 8)
    for s in [0, 4, 9, 0.5]:
        assert torch.equal(plus(x, score=s), base(x))
    with torch.no_grad():
        plus.score_embedding.weight.normal_()
    assert set(plus.state_dict()) == {f"net.{k}" for k in base.net.state_dict()} | {"score_embedding.weight"}
    plus.save_pretrained(tmp_path / "ft")
    assert sorted(p.name for p in (tmp_path / "ft").iterdir()) == ["config.json", "model.safetensors"]
    again = adapters.create("tiny+", checkpoint=tmp_path / "ft")
    assert torch.equal(again(x, score=3), plus(x, score=3))
    assert not torch.equal(again(x, score=3), again(x, score=4))
    with pytest.raises(CheckpointError, match="holds a saved 'tiny\\+'"):
        adapters.create("tiny", checkpoint=tmp_path / "ft")


def test_trainable_parameters():
    plus = adapters.create("tiny+")
    assert plus.trainable_parameters() == [plus.score_embedding.weight]
    assert len(plus.trainable_parameters(train_base=True)) == 1 + len(list(plus.net.parameters()))
    assert len(adapters.create("tiny").trainable_parameters()) == 4


# -- user adapters through the `iqprior.adapters` entry-point group ------------------------------------------
def _install(tmp_path, monkeypatch, lines: str):
    info = tmp_path / "site" / "user_pkg-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: user-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[iqprior.adapters]\n" + lines)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    adapters.registry._entry_points.cache_clear()


@pytest.fixture
def clear_entry_points():
    yield
    adapters.registry._entry_points.cache_clear()


def test_entry_point_adapters_are_listed_and_built(tmp_path, monkeypatch, clear_entry_points):
    _install(tmp_path, monkeypatch, f"mine = {__name__}:build_tiny\nmine+ = {__name__}:build_tiny_plus\n")
    assert {"mine", "mine+"} <= set(adapters.list_adapters())
    m = adapters.create("mine+", ch=3)
    assert isinstance(m, TinyAdapter) and m.is_conditioned and not m.training
    assert "entry point of user-pkg" in adapters.spec("mine").source


def test_broken_entry_points_give_one_line_errors(tmp_path, monkeypatch, clear_entry_points):
    _install(tmp_path, monkeypatch, "nocolon = just_a_module\nnomodule = no_such_module_xyz:build\n"
                                    f"noattr = {__name__}:no_such_builder\nnotadapter = torch:zeros\n")
    names = adapters.list_adapters()  # listing never imports
    assert {"nocolon", "nomodule", "noattr", "notadapter"} <= set(names)
    with pytest.raises(ImportError, match=r"^entry point nocolon = 'just_a_module' \(user-pkg.*not 'module:function'$"):
        adapters.create("nocolon")
    with pytest.raises(ImportError, match=r"adapter 'nomodule' \(entry point of user-pkg\): cannot import"):
        adapters.create("nomodule")
    with pytest.raises(AttributeError, match="has no 'no_such_builder'"):
        adapters.create("noattr")
    with pytest.raises(TypeError, match="not an adapters.Adapter"):
        adapters.create("notadapter", size=(1,))
    assert "nomodule" not in adapters.list_adapters(available_only=True)


def _builder_of(name: str):
    import importlib

    module, func = adapters.spec(name).builder.split(":")
    return getattr(importlib.import_module(module), func)


@pytest.mark.parametrize("name", sorted(adapters.specs.SPECS))
def test_builder_and_create_return_identically_configured_models(name):
    """One way to build: calling the spec's builder equals ``adapters.create`` (fast path, task, run-time
    settings, eval mode, options), also with ``exact`` / ``precision`` / ``None`` options."""
    build = _builder_of(name)
    assert hasattr(build, "__adapter_builder__"), f"{name}: builder not decorated with adapters.builder"
    entry = adapters.spec(name)
    for kwargs in ({}, {"exact": True, "precision": "bf16", "no_such_option": None}):
        torch.manual_seed(0)
        a = build(tiny=True, **kwargs)
        torch.manual_seed(0)
        b = adapters.create(name, tiny=True, **kwargs)
        assert type(a) is type(b) and a.adapter_name == b.adapter_name == name
        assert a.fast_path == b.fast_path == (entry.fast_path or type(a).fast_path)
        assert a.task == b.task == (entry.task or type(a).task)
        assert (a.exact, a.precision, a.training) == (b.exact, b.precision, b.training) == \
            (kwargs.get("exact", False), kwargs.get("precision", "fp32"), False)
        assert a.options == b.options
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name


def test_tiny_options_lie_under_the_callers():
    model = adapters.create("codeformer", tiny=True, fidelity=0.25)
    assert model.options["fidelity"] == 0.25 and model.config.img_size == adapters.spec("codeformer").tiny[
        "config"]["img_size"]
    model.options["config"]["img_size"] = 1  # the spec's table is not shared with the model
    assert adapters.spec("codeformer").tiny["config"]["img_size"] == 64
    with pytest.raises(TypeError, match="tiny"):
        adapters.create("codeformer", tiny="yes")


class _OwnFacts(TinyAdapter):
    """A user adapter that states its facts as class attributes."""

    task = "image"
    native_size = None
    controls = ("strength",)
    export_refused = "it calls a web service"

    def __init__(self, ch=4):
        super().__init__(ch, name="own")
        self.strength = 0.5


def build_own(ch=4):
    return _OwnFacts(ch)


def test_user_adapter_keeps_its_class_attributes_where_its_spec_is_silent(tmp_path, monkeypatch,
                                                                          clear_entry_points):
    """``register`` and the entry-point group give a spec that leaves task, size, controls and export unset:
    the adapter's own attributes stay; a field the spec does set wins."""
    from iqprior.export import ExportError, export_onnx

    _install(tmp_path, monkeypatch, f"own-ep = {__name__}:build_own\n")
    monkeypatch.setitem(adapters.registry._USER, "own", adapters.AdapterSpec("own", f"{__name__}:build_own"))
    for name in ("own", "own-ep"):
        m = adapters.create(name)
        assert (m.task, m.native_size, m.controls, m.export_refused) == (
            "image", None, ("strength",), "it calls a web service")
        assert not m.takes_level and adapters.spec(name).export_refused is None
    with pytest.raises(ExportError, match="own cannot be exported to ONNX: it calls a web service"):
        export_onnx(adapters.create("own"), tmp_path / "own.onnx")
    adapters.register("own", f"{__name__}:build_own", task="face", controls=(), export_refused="spec says no")
    m = adapters.create("own")
    assert (m.task, m.controls, m.export_refused) == ("face", (), "spec says no")
    plus = adapters.create("tiny+")  # no "condition" in its spec: the built model says it takes a level
    assert plus.takes_level and not adapters.spec("tiny+").takes_level
