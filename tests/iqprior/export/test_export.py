"""ONNX export: onnxruntime equals PyTorch's exact path for every adapter that exports (tiny configs)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import adapters

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from iqprior.export import ExportError, OnnxModel, export_onnx  # noqa: E402
from iqprior.export.onnx_export import export_refusal  # noqa: E402

ATOL = 1e-4
# `auto` / `auto+` load a file (their tiny model is a SwinIR, which does not trace: see the auto tests at the end)
EXPORTABLE = sorted(n for n in adapters.specs.SPECS if not export_refusal(n) and n not in ("auto", "auto+"))


def test_every_builtin_adapter_exports_or_says_why():
    assert {n.rstrip("+") for n in adapters.specs.SPECS if n not in EXPORTABLE} == {"difface", "auto"}
    assert export_refusal("difface") and not export_refusal("auto+")


def tiny(name: str) -> adapters.Adapter:
    """A tiny random model with non-trivial weights everywhere, level embeddings included (so that levels
    change the output and a level baked into the graph would show)."""
    torch.manual_seed(0)
    model = adapters.create(name, tiny=True)  # AdapterSpec.tiny
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            scale = 0.5 if "score_embedding" in n else (0.1 if p.dim() < 2 else 0.05)
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


@pytest.fixture(scope="module", params=EXPORTABLE)
def exported(request, tmp_path_factory):
    torch.set_num_threads(1)
    model = tiny(request.param)
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    report = export_onnx(model, path, verify=False)
    return model, OnnxModel(path, threads=1), report


def _exact(model, x, level=None, **kw):
    model.set_exact(True)
    with torch.no_grad():
        return model(x, **({} if level is None else {"score": level}), **kw)


def _size(runner):
    return runner.input_size or (72, 88)  # image models: another size than the traced one, no multiple of 16


def test_equals_pytorch_exact_at_levels_0_9_and_mixed_batch(exported):
    model, runner, _ = exported
    h, w = _size(runner)
    x = torch.rand(3, 3, h, w, generator=torch.Generator().manual_seed(2))  # batch 3: exported with 2
    if not runner.is_conditioned:
        assert (runner(x) - _exact(model, x)).abs().max() < ATOL
        return
    outs = {}
    for lv in (0, 9):
        outs[lv] = runner(x, score=lv)
        assert (outs[lv] - _exact(model, x, lv)).abs().max() < ATOL, lv
    mixed = torch.tensor([0, 9, 4])
    assert (runner(x, score=mixed) - _exact(model, x, mixed)).abs().max() < ATOL
    assert (outs[0] - outs[9]).abs().max() > 1e-3  # the level is an input, not a constant


def test_metadata_and_inputs(exported):
    model, runner, report = exported
    spec = adapters.spec(model.adapter_name)
    m = runner.metadata
    assert m["adapter"] == model.adapter_name and m["task"] == spec.task and m["random_weights"] == "false"
    assert m["native_size"] == ("" if model.native_size is None else str(model.native_size))
    assert m["levels"] == ("10" if runner.is_conditioned else "0") and m["scale"] == "1" and m["iqprior_version"]
    assert runner.is_conditioned == spec.takes_level == model.takes_level
    names = [i.name for i in runner.session.get_inputs()]
    assert names == ["image", "level"][:1 + runner.is_conditioned]
    assert report.inputs[:len(names)] == names and runner.session.get_outputs()[0].name == "output"
    if model.native_size is None:
        assert runner.input_size is None  # dynamic height and width
    else:
        assert runner.input_size == (model.native_size,) * 2


def test_image_models_take_any_size(exported):
    model, runner, _ = exported
    if runner.input_size is not None:
        pytest.skip("face models have a fixed size")
    for hw in ((64, 96), (50, 70)):
        x = torch.rand(1, 3, *hw)
        y = runner(x, score=3)
        assert y.shape == x.shape and (y - _exact(model, x, 3 if runner.is_conditioned else None)).abs().max() < ATOL


@pytest.fixture(scope="module")
def codeformer_plus(tmp_path_factory):
    torch.set_num_threads(1)
    model = tiny("codeformer+")
    path = tmp_path_factory.mktemp("cf") / "cf.onnx"
    export_onnx(model, path, verify=False)
    return model, OnnxModel(path, threads=1)


def test_fidelity_is_an_optional_input_not_a_constant(codeformer_plus):
    model, runner = codeformer_plus
    assert runner.controls == {"fidelity": 0.5}
    assert [i.name for i in runner.session.get_overridable_initializers()] == ["fidelity"]
    x = torch.rand(2, 3, 64, 64)
    default = runner(x, score=9)
    assert (default - _exact(model, x, 9)).abs().max() < ATOL
    for w in (0.0, 1.0):
        y = runner(x, score=9, fidelity=w)
        assert (y - _exact(model, x, 9, fidelity=w)).abs().max() < ATOL
        assert (y - default).abs().max() > 1e-4
    per_image = runner(x, score=9, fidelity=torch.tensor([0.0, 1.0]))
    assert (per_image[1] - runner(x[1:], score=9, fidelity=1.0)[0]).abs().max() < ATOL


def test_bad_levels_are_one_line_errors(codeformer_plus):
    _, runner = codeformer_plus
    x = torch.rand(2, 3, 64, 64)
    for bad in (10, -1, torch.tensor([0, 12]), 1.5, torch.tensor([3.0, 9.0])):
        with pytest.raises(ValueError, match="outside"):
            runner(x, score=bad)
    with pytest.raises(ValueError, match="3 (levels|scores) for a batch of 2"):
        runner(x, score=torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError):
        runner(x, score=True)
    with pytest.raises(ValueError, match="takes 64x64"):
        runner(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="no control 'strength'"):
        runner(x, strength=1.0)


def test_difface_is_refused_with_the_reason(tmp_path):
    for name in ("difface", "difface+"):
        assert "sampler loop" in export_refusal(name)
    model = adapters.create("difface", tiny=True)
    with pytest.raises(ExportError, match="difface cannot be exported.*sampler loop"):
        export_onnx(model, tmp_path / "d.onnx")
    assert not (tmp_path / "d.onnx").exists()


class _Plain(torch.nn.Module):
    def __init__(self, bad: bool = False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.bad = bad

    def forward(self, x, *extra):
        y = self.conv(x)
        return y * float("nan") if self.bad else y + sum(e.sum() for e in extra)


def export_foreign(path, module, size=None, extra=False):
    """Export ``module`` without iqprior (no metadata), inputs ``x`` (and ``y``), output ``out``."""
    args = (torch.rand(1, 3, 32, 32),) + ((torch.rand(1, 5),) if extra else ())
    names = ["x"] + (["y"] if extra else [])
    axes = {"x": {0: "b"} if size else {0: "b", 2: "h", 3: "w"}}
    torch.onnx.export(module, args, str(path), dynamo=False, input_names=names, output_names=["out"],
                      dynamic_axes=axes, opset_version=18)
    return path


def test_foreign_files_run_when_image_shaped(tmp_path):
    plain = _Plain()
    r = OnnxModel(export_foreign(tmp_path / "any.onnx", plain), threads=1)
    assert r.metadata == {} and r.task == "image" and not r.is_conditioned
    x = torch.rand(2, 3, 40, 24)
    with torch.no_grad():
        assert (r(x, score=7) - plain(x)).abs().max() < ATOL
    fixed = OnnxModel(export_foreign(tmp_path / "fixed.onnx", plain, size=32), threads=1)
    assert fixed.task == "face" and fixed.native_size == 32
    with pytest.raises(ValueError, match="not image/level-shaped.*y: tensor\\(float\\)"):
        OnnxModel(export_foreign(tmp_path / "two.onnx", plain, extra=True))
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="not a model onnxruntime can load"):
        OnnxModel(tmp_path / "junk.onnx")


def test_export_writes_atomically_and_refuses_bad_out(tmp_path):
    model = tiny("nu2net")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        export_onnx(model, blocker / "m.onnx")
    with pytest.raises(ValueError, match="is a folder"):
        export_onnx(model, tmp_path)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", opset=13)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_import_stays_light():
    code = ("import sys, iqprior, iqprior.export; "
            "print(json.dumps([m for m in ('onnx', 'onnxruntime', 'adapters') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_fp16_export_reports_its_deviation(tmp_path):
    model = tiny("daefr+")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = export_onnx(model, tmp_path / "h.onnx", precision="fp16")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the caller's model untouched
    assert report.metadata["precision"] == "fp16" and set(report.max_diff) == {"levels 0,9", "level 9"}
    assert 0 < max(report.max_diff.values()) < 0.05  # float16 rounding: not zero, not broken
    runner = OnnxModel(tmp_path / "h.onnx", threads=1)
    assert runner.image_input.type == "tensor(float)"  # inputs and output stay float32
    assert runner(torch.rand(1, 3, 16, 16), score=2).dtype == torch.float32


@pytest.mark.parametrize("family", ["NAFNet", "ESRGAN"])
def test_auto_models_run_at_any_size_the_runner_pads_for(family, tmp_path):
    """A network that pads itself inside ``forward`` (NAFNet to its U-Net depth) keeps the trace size's pad
    amounts in the graph: export finds the multiple the runner pads to, and the file equals PyTorch at odd
    sizes, its scale kept."""
    pytest.importorskip("spandrel")
    from adapters.auto.tiny import write_tiny_file

    torch.set_num_threads(1)
    model = adapters.create("auto+", checkpoint=write_tiny_file(family, tmp_path / "m.pth", "params_ema"))
    with torch.no_grad():
        for e in model.embeddings():
            e.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    report = export_onnx(model, tmp_path / "m.onnx")
    runner = OnnxModel(tmp_path / "m.onnx", threads=1)
    assert "61x83" in report.max_diff and runner.input_size is None
    for hw in ((61, 83), (50, 70)):
        x = torch.rand(2, 3, *hw)
        y = runner(x, score=torch.tensor([0, 9]))
        assert y.shape == (2, 3, hw[0] * model.scale, hw[1] * model.scale)
        assert (y - _exact(model, x, torch.tensor([0, 9]))).abs().max() < ATOL


def test_auto_window_transformer_is_refused_in_one_line(tmp_path):
    """SwinIR's shifted-window attention is traced with the trace size's constants: the file would be wrong at
    other sizes, so the export refuses in one line and writes nothing."""
    pytest.importorskip("spandrel")
    from adapters.auto.tiny import write_tiny_file

    torch.set_num_threads(1)
    model = adapters.create("auto", checkpoint=write_tiny_file("SwinIR", tmp_path / "s.pth", "params_ema"))
    with pytest.raises(ExportError, match="--size HxW"):
        export_onnx(model, tmp_path / "dyn.onnx")
    assert not (tmp_path / "dyn.onnx").exists()
