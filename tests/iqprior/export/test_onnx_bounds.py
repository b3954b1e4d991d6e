"""An untrusted ONNX file: metadata bounded by the pixel cap, runs bounded in time and memory, text printable
(issue 33, items 4, 5 and 10)."""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402

from iqprior.export import OnnxModel  # noqa: E402


def _hostile():
    spec = importlib.util.spec_from_file_location("hostile_onnx", Path(__file__).with_name("hostile_onnx.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


H = _hostile()


def _save(model, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


BAD_METADATA = {
    "size_requirements": ({"iqprior.size_requirements": "[100000, 1, true]"}, "size_requirements"),
    "multiple": ({"iqprior.size_requirements": "[0, 99999999, false]"}, "size_requirements"),
    "native_size": ({"iqprior.native_size": "100000", "iqprior.task": "face"}, "native_size"),
    "scale": ({"iqprior.scale": "1000000"}, "scale"),
    "levels": ({"iqprior.levels": "1e12"}, "levels"),
    "controls_list": ({"iqprior.controls": "[1, 2]"}, "controls"),
    "controls_deep": ({"iqprior.controls": "[" * 5000 + "]" * 5000}, "controls"),
    "controls_nan": ({"iqprior.controls": '{"fidelity": NaN}'}, "controls"),
    "task": ({"iqprior.task": "rm -rf"}, "task"),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_metadata_out_of_range_is_one_clear_error(tmp_path, case):
    meta, field = BAD_METADATA[case]
    path = _save(H.identity({"iqprior.adapter": "x", **meta}), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=field) as err:
        OnnxModel(path)
    assert "\n" not in str(err.value)


def test_fixed_input_size_is_bounded_by_the_pixel_cap(tmp_path):
    path = _save(H.identity(dims=(1, 3, 100000, 100000)), tmp_path / "fixed.onnx")
    with pytest.raises(ValueError, match="MP cap"):
        OnnxModel(path)


def test_a_valid_file_still_runs(tmp_path):
    path = _save(H.identity({"iqprior.adapter": "id", "iqprior.size_requirements": "[16, 8, true]",
                             "iqprior.scale": "1"}), tmp_path / "ok.onnx")
    model = OnnxModel(path)
    x = torch.rand(1, 3, 10, 12)
    assert torch.equal(model(x), x) and model.size_requirements == (16, 8, True)


def test_an_endless_loop_is_stopped_by_the_time_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("IQPRIOR_ONNX_SECONDS", "1")
    model = OnnxModel(_save(H.loop(), tmp_path / "loop.onnx"))
    t = time.monotonic()
    with pytest.raises(ValueError, match="longer than 1 s"):
        model(torch.rand(1, 3, 8, 8))
    assert time.monotonic() - t < 20


def test_a_large_allocation_is_stopped_by_the_memory_bound(tmp_path, monkeypatch):
    # 2**28 floats = 1 GiB from a 221-byte file; the run may add 128 MB of address space here
    monkeypatch.setenv("IQPRIOR_ONNX_MEMORY_MB", "128")
    model = OnnxModel(_save(H.const_of_shape(2**28), tmp_path / "cos.onnx"))
    with pytest.raises(ValueError, match="more memory"):
        model(torch.rand(1, 3, 8, 8))


def test_the_memory_bound_is_lifted_after_the_run(tmp_path, monkeypatch):
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    monkeypatch.setenv("IQPRIOR_ONNX_MEMORY_MB", "128")
    model = OnnxModel(_save(H.const_of_shape(2**28), tmp_path / "cos.onnx"))
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 8, 8))
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_text_from_the_file_cannot_drive_the_terminal(tmp_path, capsys):
    from iqprior.cli import main
    from iqprior.io import write_image

    path = _save(H.identity({"iqprior.adapter": "evil\x1b[2J\x1b]0;pwned\x07\u202e", "iqprior.random_weights": "true",
                             "iqprior.scale": "\x1b[31m"}), tmp_path / "e.onnx")
    with pytest.raises(ValueError) as err:
        OnnxModel(path)
    assert "\x1b" not in str(err.value) and "\\x1b" in str(err.value)
    path = _save(H.identity({"iqprior.adapter": "evil\x1b[2J\x1b]0;pwned\x07\u202e", "iqprior.random_weights": "true"}),
                 tmp_path / "e.onnx")
    assert not any(c in OnnxModel(path).adapter_name for c in "\x1b\x07\u202e")
    write_image(tmp_path / "in.png", torch.rand(3, 16, 16))
    assert main(["restore", str(tmp_path / "in.png"), "--onnx", str(path), "--out", str(tmp_path / "o"),
                 "--no-progress", "--aligned"]) == 0
    out = capsys.readouterr()
    assert "random weights" in out.err and "\x1b" not in out.err + out.out and "\u202e" not in out.err
