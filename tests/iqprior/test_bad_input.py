"""Bad input never gives silent garbage: decompression bombs, NaN/Inf pixels, NaN weights, error records."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from iqprior.cli import main
from iqprior.io import ImageReadError, NonFiniteError, check_finite, read_image, write_image

ROOT = Path(__file__).resolve().parents[2]


def _png(width: int, height: int, idat: bytes, bit_depth: int = 8, color: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png(side: int) -> bytes:
    """A real, valid 1-bit gray PNG of side x side zeros: a few hundred KB that decode to side² pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return _png(side, side, data, bit_depth=1, color=0)


@pytest.mark.parametrize("side", [11_000, 30_000])  # between PIL's warning and error limits; above both
def test_size_is_read_from_the_header_before_decoding(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(side, side, b"not even valid deflate data"))  # decoding would fail: never reached
    with pytest.raises(ImageReadError, match="above the 100 MP limit"):
        read_image(path)


def test_decompression_bomb_costs_no_memory(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(12_000))  # 144 MP: OpenCV would allocate 144-432 MB to decode it
    assert path.stat().st_size < 1_000_000
    code = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from iqprior.io import ImageReadError, read_image
import cv2, PIL.Image  # imported before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_image({str(path)!r})
except ImageReadError as e:
    print("refused:", e)
print("rise_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "refused:" in out and "144 MP" in out
    assert int(out.split("rise_kb")[1]) < 50_000  # < 50 MB peak rise (decoding would be >= 144 MB)


def _float_tiff(path: Path, bad: float) -> Path:
    img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    img[3, 4, 1] = bad
    # uncompressed: OpenCV 4.10's default (LZW, float predictor) writes the NaN/Inf pixel as zeros
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_are_an_error(tmp_path, bad):
    with pytest.raises(ImageReadError, match="NaN/Inf"):
        read_image(_float_tiff(tmp_path / "x.tiff", bad))


def test_writing_a_non_finite_image_is_refused(tmp_path):
    x = torch.rand(3, 16, 16)
    x[0, 1, 1] = float("nan")
    with pytest.raises(NonFiniteError):
        write_image(tmp_path / "y.png", x)
    assert not (tmp_path / "y.png").exists()
    with pytest.raises(NonFiniteError):
        check_finite(torch.tensor([1.0, float("inf")]))


def test_score_job_records_nan_tiff_as_error(tmp_path, face_paths):
    src = tmp_path / "in"
    src.mkdir()
    _float_tiff(src / "nan.tiff", float("nan"))
    write_image(src / "ok.png", read_image(face_paths[0])[:, :64, :64])
    out = tmp_path / "s.jsonl"
    assert main(["score", str(src), "--members", "piqe,entropy", "--out", str(out), "--no-progress"]) == 0
    recs = {json.loads(line)["path"]: json.loads(line) for line in out.read_text().splitlines()}
    assert "NaN/Inf" in recs["nan.tiff"]["error"] and "score" in recs["ok.png"]


def test_restore_refuses_nan_input_and_nan_weights(tmp_path, face_paths, capsys):
    import adapters

    src = tmp_path / "in"
    src.mkdir()
    _float_tiff(src / "nan.tiff", float("nan"))
    ok = src / "ok.png"
    write_image(ok, read_image(face_paths[0])[:, :64, :64])
    out = tmp_path / "out"
    assert main(["restore", str(src), "--model", "nu2net", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nan.tiff" in err and "NaN/Inf" in err and "1 error" in err
    assert sorted(p.name for p in out.iterdir()) == ["ok.png"]

    # a checkpoint with NaN weights: an error per file, never a (black) image
    model = adapters.create("nu2net")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan_ckpt")
    out2 = tmp_path / "out2"
    assert main(["restore", str(ok), "--model", "nu2net", "--checkpoint", str(tmp_path / "nan_ckpt"),
                 "--out", str(out2), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "NaN/Inf" in err and "0 image(s)" not in err.split("restored")[0]
    assert not list(out2.glob("*.png"))


def _records(path: Path) -> dict[str, dict]:
    from iqprior.scoring.manifest import latest_by_path, read_manifest

    return latest_by_path(read_manifest(path))


def test_error_records_are_retried(tmp_path, face_paths):
    src = tmp_path / "in"
    src.mkdir()
    good = read_image(face_paths[0])[:, :64, :64]
    write_image(src / "a.png", good)
    (src / "b.png").write_bytes(b"broken")
    out = tmp_path / "s.jsonl"
    args = ["score", str(src), "--members", "piqe,entropy", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert "error" in _records(out)["b.png"] and "score" in _records(out)["a.png"]
    write_image(src / "b.png", good)  # the cause is fixed: the next run scores it
    assert main(args) == 0
    recs = _records(out)
    assert "error" not in recs["b.png"] and recs["b.png"]["score"] == pytest.approx(recs["a.png"]["score"])


def test_bad_batch_size_does_no_work(tmp_path, face_paths, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["score", str(face_paths[0]), "--members", "offline", "--out", str(out), "--batch-size", "0"]) == 1
    assert "--batch-size must be >= 1" in capsys.readouterr().err and not out.exists()


def test_rescoring_with_other_members_adds_them(tmp_path, face_paths):
    src = tmp_path / "in"
    src.mkdir()
    for i, p in enumerate(face_paths[:2]):
        write_image(src / f"{i}.png", read_image(p)[:, :64, :64])
    out = tmp_path / "s.jsonl"
    assert main(["score", str(src), "--members", "piqe", "--out", str(out), "--no-progress"]) == 0
    first = _records(out)
    assert main(["score", str(src), "--members", "entropy", "--out", str(out), "--no-progress"]) == 0
    recs = _records(out)
    for k, rec in recs.items():
        assert set(rec["raw"]) == {"piqe", "entropy"} and rec["raw"]["piqe"] == first[k]["raw"]["piqe"]
        assert rec["score"] == pytest.approx(rec["raw"]["entropy"] / 8.0)  # entropy alone, by its range
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert summary["members_used"] == ["entropy"] and summary["count"] == 2


def test_single_image_calibration_warns(tmp_path, face_paths):
    out = tmp_path / "s.jsonl"
    with pytest.warns(UserWarning, match="min-max over one image is meaningless"):
        assert main(["score", str(face_paths[0]), "--members", "offline", "--out", str(out), "--calibrate",
                     "--no-progress"]) == 0
    assert "meaningless" in json.loads((tmp_path / "s.summary.json").read_text())["warning"]


def test_random_weights_are_recorded_in_every_scoring_file(tmp_path, face_paths):
    from iqprior.scoring import Calibration, create_scorer
    from iqprior.scoring.job import score_directory

    src = tmp_path / "in"
    src.mkdir()
    for i, p in enumerate(face_paths[:2]):
        write_image(src / f"{i}.png", read_image(p)[:, :64, :64])
    scorer = create_scorer(["musiq", "entropy"], pretrained=False, device="cpu")
    assert scorer.random_weights == ("musiq",)
    res = score_directory(src, scorer, tmp_path / "s.jsonl", calibrate=True, progress=False)
    for path in (res.summary, res.calibration):
        data = json.loads(Path(path).read_text())
        assert data["random_weights"] == ["musiq"] and "meaningless" in data["note"]
    assert "musiq" in Calibration.load(res.calibration)  # the note does not break loading
    plain = score_directory(src, create_scorer(["entropy"], device="cpu"), tmp_path / "o.jsonl", calibrate=True,
                            progress=False)
    assert "random_weights" not in json.loads(plain.summary.read_text())
