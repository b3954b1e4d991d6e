"""``iqprior export`` and ``iqprior restore --onnx``: one loop for both runtimes, checked arguments."""
from __future__ import annotations

import json

import pytest
import torch

import adapters
from iqprior.cli import main
from iqprior.io import read_image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny CodeFormer+ with non-zero level embedding, saved with save_pretrained."""
    torch.manual_seed(0)
    model = adapters.create("codeformer+", tiny=True)
    with torch.no_grad():
        model.score_embedding.weight.normal_(0, 0.5)
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "cf_plus")


@pytest.fixture(scope="module")
def onnx_file(saved, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "cf_plus.onnx"
    assert main(["export", "--model", "codeformer+", "--checkpoint", str(saved), "--out", str(out)]) == 0
    return out


def test_export_reports_the_check(saved, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", "codeformer+", "--checkpoint", str(saved), "--out", str(out),
                 "--fidelity", "0.8"]) == 0
    line = capsys.readouterr().out
    assert "inputs image, level, fidelity" in line and "levels 0,9:" in line
    diff = float(line.split("levels 0,9: ")[1].split(",")[0])
    assert diff < 1e-4
    import onnx
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["iqprior.adapter"] == "codeformer+" and meta["iqprior.random_weights"] == "false"
    assert json.loads(meta["iqprior.controls"]) == {"fidelity": 0.8}


def test_restore_onnx_equals_restore_pytorch_and_resumes(saved, onnx_file, face_paths, tmp_path, capsys):
    common = [str(face_paths[0]), str(face_paths[1]), "--aligned", "--score", "3", "--no-progress"]
    assert main(["restore", *common, "--model", "codeformer+", "--checkpoint", str(saved), "--exact",
                 "--out", str(tmp_path / "pt")]) == 0
    assert main(["restore", *common, "--onnx", str(onnx_file), "--out", str(tmp_path / "ox")]) == 0
    for f in face_paths[:2]:
        a, b = read_image(tmp_path / "pt" / f"{f.stem}.png"), read_image(tmp_path / "ox" / f"{f.stem}.png")
        assert a.shape == b.shape == (3, 64, 64)
        assert (a - b).abs().max() <= 1 / 255 + 1e-6
    capsys.readouterr()
    mtime = (tmp_path / "ox" / f"{face_paths[0].stem}.png").stat().st_mtime_ns
    assert main(["restore", *common, "--onnx", str(onnx_file), "--out", str(tmp_path / "ox")]) == 0
    assert "2 already done" in capsys.readouterr().err
    assert (tmp_path / "ox" / f"{face_paths[0].stem}.png").stat().st_mtime_ns == mtime
    # the level reaches the file: another level gives another image
    assert main(["restore", str(face_paths[0]), "--aligned", "--score", "9", "--no-progress", "--onnx",
                 str(onnx_file), "--out", str(tmp_path / "ox9")]) == 0
    a = read_image(tmp_path / "ox9" / f"{face_paths[0].stem}.png")
    assert (a - read_image(tmp_path / "ox" / f"{face_paths[0].stem}.png")).abs().max() > 2 / 255


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("iqprior ")]
    assert len(err) == 1, err
    return err[0]


def test_bad_arguments_are_one_line(onnx_file, face_paths, tmp_path, capsys):
    src = [str(face_paths[0]), "--aligned", "--no-progress", "--out", str(tmp_path / "o")]
    assert main(["restore", *src, "--onnx", str(onnx_file), "--score", "12"]) == 1
    assert "outside 0..9" in _one_error_line(capsys)
    assert main(["restore", *src, "--onnx", str(onnx_file), "--model", "codeformer+"]) == 1
    assert "one of the two" in _one_error_line(capsys)
    assert main(["restore", *src, "--onnx", str(onnx_file), "--checkpoint", "official"]) == 1
    assert "--checkpoint do(es) not apply to --onnx" in _one_error_line(capsys)
    assert main(["restore", *src, "--onnx", str(tmp_path / "missing.onnx")]) == 1
    assert "no such file" in _one_error_line(capsys)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["export", "--model", "codeformer+", "--out", str(blocker / "m.onnx")]) == 1
    assert "is a file, not a folder" in _one_error_line(capsys)
    assert main(["export", "--model", "difface+", "--out", str(tmp_path / "d.onnx")]) == 1
    assert "sampler loop" in _one_error_line(capsys)
    assert main(["export", "--model", "codeformer", "--size", "256", "--out", str(tmp_path / "c.onnx")]) == 1
    assert "native size 512x512" in _one_error_line(capsys)
    assert not (tmp_path / "o").exists() and not (tmp_path / "d.onnx").exists()


class _NaN(torch.nn.Module):
    def forward(self, x):
        return x * float("nan")


def test_restore_onnx_refuses_nan_outputs(underwater_paths, tmp_path, capsys):
    path = tmp_path / "nan.onnx"
    torch.onnx.export(_NaN(), (torch.rand(1, 3, 32, 32),), str(path), dynamo=False, input_names=["image"],
                      output_names=["output"], dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}}, opset_version=18)
    out = tmp_path / "out"
    assert main(["restore", str(underwater_paths[0]), "--onnx", str(path), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "NaN" in err and "1 error(s)" in err
    assert list(out.glob("*.png")) == []
