"""``iqprior restore``: aligned faces, RGBA/gray inputs, resumability, per-file errors, sweeps."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import adapters
from iqprior.cli import main
from iqprior.io import read_image

TINY = json.dumps(adapters.spec("codeformer").tiny["config"])  # the spec's tiny network, for --option
BASE = ["--option", f"config={TINY}", "--aligned", "--no-progress"]


def test_restore_aligned_faces_and_resume(face_paths, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["restore", str(face_paths[0]), str(face_paths[1]), "--model", "codeformer+", "--out", str(out),
               "--score", "7", "--fidelity", "0.5", "--batch-size", "2", *BASE])
    assert rc == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [face_paths[0].stem + ".png", face_paths[1].stem + ".png"]
    assert read_image(out / files[0]).shape == (3, 64, 64)
    assert "random weights" in capsys.readouterr().err
    mtime = (out / files[0]).stat().st_mtime_ns
    assert main(["restore", str(face_paths[0]), "--model", "codeformer+", "--out", str(out), *BASE]) == 0
    assert (out / files[0]).stat().st_mtime_ns == mtime and "1 already done" in capsys.readouterr().err


def test_rgba_gray_and_broken_inputs(face_paths, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    bgr = cv2.imread(str(face_paths[0]))
    rgba = np.concatenate([bgr, np.full(bgr.shape[:2] + (1,), 200, np.uint8)], axis=2)
    cv2.imwrite(str(src / "a_rgba.png"), rgba)
    cv2.imwrite(str(src / "b_gray.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(src / "c_small.png"), cv2.resize(bgr, (100, 100)))
    (src / "d_broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = main(["restore", str(src), "--model", "codeformer", "--out", str(out), *BASE])
    err = capsys.readouterr().err
    assert rc == 1 and "d_broken.png" in err and "1 error" in err
    assert sorted(p.name for p in out.glob("*.png")) == ["a_rgba.png", "b_gray.png", "c_small.png"]


def test_sweep_writes_one_grid(face_paths, tmp_path):
    out = tmp_path / "sweep"
    assert main(["restore", str(face_paths[0]), "--model", "codeformer+", "--out", str(out), "--sweep", "0..9",
                 *BASE]) == 0
    grid = out / (face_paths[0].stem + "_sweep.png")
    assert grid.is_file() and cv2.imread(str(grid)).shape[1] > 5 * cv2.imread(str(grid)).shape[0]


def test_bad_arguments(face_paths, tmp_path):
    assert main(["restore", str(face_paths[0]), "--model", "codeformer", "--out", str(tmp_path),
                 "--sweep", "3..12", *BASE]) == 1
    assert main(["restore", str(face_paths[0]), "--model", "codefromer", "--out", str(tmp_path), *BASE]) == 1


def test_whole_photo_without_detector_weights_fails_once(whole_paths, tmp_path, capsys):
    rc = main(["restore", str(whole_paths[0]), "--model", "codeformer", "--option", f"config={TINY}",
               "--out", str(tmp_path), "--no-progress", "--detector", "retinaface"])
    assert rc == 1 and "detection_Resnet50_Final.pth" in capsys.readouterr().err
    # the default detector falls back to MTCNN, whose file is absent here (offline, empty cache): named once
    rc = main(["restore", str(whole_paths[0]), "--model", "codeformer", "--option", f"config={TINY}",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 1 and capsys.readouterr().err.count("mtcnn_facenet-pytorch-2.6.0.safetensors") >= 1


def test_image_task_model_processes_any_size(underwater_paths, tmp_path):
    import adapters
    name = next((n for n in ("nu2net", "puienet") if n in adapters.list_adapters(available_only=True)), None)
    if name is None:
        pytest.skip("no image-task adapter available")
    small = tmp_path / "uw.png"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(underwater_paths[0])), (72, 56)))
    out = tmp_path / "out"
    assert main(["restore", str(small), "--model", name, "--out", str(out), "--no-progress"]) == 0
    assert read_image(out / "uw.png").shape == (3, 56, 72)
