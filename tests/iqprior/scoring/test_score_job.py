"""`iqprior score`: resumable manifest, per-image errors, calibration, summary, histogram."""
import json
import shutil

import cv2
import numpy as np
import pytest

from iqprior.cli import main
from iqprior.scoring import create_scorer
from iqprior.scoring.job import score_directory
from iqprior.scoring.manifest import ManifestWriter, read_manifest


@pytest.fixture
def folder(tmp_path, face_paths, whole_paths):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for p in face_paths[:2]:
        shutil.copy(p, root / p.name)
    shutil.copy(whole_paths[0], root / "sub" / whole_paths[0].name)
    return root


def add_bad_images(root):
    rng = np.random.default_rng(0)
    img = (rng.random((64, 48, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(root / "gray.png"), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(root / "rgba.png"), np.dstack([img, np.full((64, 48), 128, np.uint8)]))
    cv2.imwrite(str(root / "deep16.png"), (img.astype(np.uint16) * 257))
    (root / "zero.png").write_bytes(b"")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    good = cv2.imencode(".png", img)[1].tobytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 3])
    cv2.imwrite(str(root / "tiny.png"), img[:4, :4])


def test_score_folder_with_bad_images(folder, tmp_path):
    add_bad_images(folder)
    out = tmp_path / "out" / "scores.jsonl"
    rc = main(["score", str(folder), "--members", "piqe,entropy", "--out", str(out), "--calibrate",
               "--plot", str(tmp_path / "out" / "hist.png"), "--no-progress"])
    assert rc == 0
    recs = {r["path"]: r for r in read_manifest(out)}
    assert set(recs) == {"0143.png", "0240.png", "sub/00.jpg", "gray.png", "rgba.png", "deep16.png", "zero.png",
                         "corrupt.jpg", "truncated.png", "tiny.png"}
    for ok in ("0143.png", "sub/00.jpg", "gray.png", "rgba.png", "deep16.png"):
        assert "error" not in recs[ok], recs[ok]
        assert set(recs[ok]["raw"]) == {"piqe", "entropy"} and 0 <= recs[ok]["score"] <= 1
        assert recs[ok]["level"] == min(int(recs[ok]["score"] * 10), 9)
    assert "empty" in recs["zero.png"]["error"]
    assert "not a decodable image" in recs["corrupt.jpg"]["error"]
    assert "error" in recs["truncated.png"]
    assert "smaller than" in recs["tiny.png"]["error"]
    cal = json.loads((tmp_path / "out" / "scores.calibration.json").read_text())
    assert set(cal["members"]) == {"piqe", "entropy"} and cal["members"]["piqe"]["count"] == 6
    summary = json.loads((tmp_path / "out" / "scores.summary.json").read_text())
    assert summary["count"] == 6 and summary["errors"] == 4 and "p50" in summary["quantiles"]
    assert (tmp_path / "out" / "hist.png").stat().st_size > 1000
    # 16-bit gray-level conversion is proper: same content as the 8-bit version
    assert recs["deep16.png"]["raw"]["entropy"] == pytest.approx(recs["gray.png"]["raw"]["entropy"], abs=0.6)


@pytest.mark.filterwarnings("ignore:.*unreadable line")
def test_resume_after_crash_loses_nothing(folder, tmp_path):
    scorer = create_scorer(["piqe", "entropy"], device="cpu", batch_size=1)
    out = tmp_path / "scores.jsonl"

    class Crash(Exception):
        pass

    seen = []

    def crash_after_first(rec):
        seen.append(rec["path"])
        raise Crash

    with pytest.raises(Crash):
        score_directory(folder, scorer, out, progress=False, on_record=crash_after_first)
    # simulate a torn write of the next record after the crash
    with open(out, "a") as f:
        f.write('{"path": "sub/00.jpg", "raw": {"pi')
    with pytest.warns(UserWarning, match="unreadable"):
        first = read_manifest(out)
    assert [r["path"] for r in first] == seen
    result = score_directory(folder, scorer, out, progress=False)
    assert result.skipped == 1 and result.scored == 2
    recs = read_manifest(out)
    assert sorted(r["path"] for r in recs) == ["0143.png", "0240.png", "sub/00.jpg"]
    again = score_directory(folder, scorer, out, progress=False)
    assert again.scored == 0 and again.skipped == 3


def test_manifest_writer_repairs_torn_tail(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"path": "a"}\n{"path": "b", "ra')
    with ManifestWriter(p) as w:
        w.write({"path": "c"})
    with pytest.warns(UserWarning, match="unreadable"):
        assert [r["path"] for r in read_manifest(p)] == ["a", "c"]


def test_apply_existing_calibration(folder, tmp_path):
    out1 = tmp_path / "a.jsonl"
    assert main(["score", str(folder), "--members", "piqe,entropy", "--out", str(out1), "--calibrate", "--no-progress"]) == 0
    out2 = tmp_path / "b.jsonl"
    assert main(["score", str(folder), "--members", "piqe,entropy", "--out", str(out2), "--no-progress",
                 "--calibration", str(tmp_path / "a.calibration.json")]) == 0
    a = {r["path"]: r["score"] for r in read_manifest(out1)}
    b = {r["path"]: (r["score"], r["normalised_by"]) for r in read_manifest(out2)}
    assert all(b[k] == (pytest.approx(v), "calibration") for k, v in a.items())


def test_cli_errors_and_listing(tmp_path, capsys):
    assert main(["score", str(tmp_path / "missing"), "--members", "piqe,entropy", "--out", str(tmp_path / "x.jsonl")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["score", str(tmp_path), "--members", "nope", "--out", str(tmp_path / "x.jsonl")]) == 1
    assert main(["score", ".", "--out", "x", "--list-members"]) == 0
    assert "topiq_nr-face-v1" in capsys.readouterr().out


def test_torchrun_shards_and_merges(folder, tmp_path):
    """`torchrun --nproc_per_node 2 -m iqprior score`: each rank scores its shard, rank 0 merges and calibrates."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "dist" / "scores.jsonl"
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29561", "-m", "iqprior", "score", str(folder), "--members", "piqe,entropy",
                           "--out", str(out), "--calibrate", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scored 3 new image(s)" in proc.stderr
    recs = read_manifest(out)
    assert sorted(r["path"] for r in recs) == ["0143.png", "0240.png", "sub/00.jpg"]
    assert all("level" in r for r in recs)
    assert not list(out.parent.glob("*.rank*"))  # parts merged and removed
    assert json.loads((out.parent / "scores.calibration.json").read_text())["members"]["piqe"]["count"] == 3


def test_precision_flag_marks_the_records(folder, tmp_path, capsys):
    """``--precision bf16``: learned members autocast, every record and the summary say so; fp32 records carry
    no mark. A wrong value is one line and no manifest."""
    out = tmp_path / "bf16.jsonl"
    assert main(["score", str(folder), "--members", "musiq,entropy", "--random-weights", "--precision", "bf16",
                 "--out", str(out), "--no-progress", "--workers", "0"]) == 0
    recs = read_manifest(out)
    assert len(recs) == 3 and all(r["precision"] == "bf16" for r in recs)
    assert json.loads(out.with_name("bf16.summary.json").read_text())["precision"] == "bf16"
    ref = tmp_path / "fp32.jsonl"
    assert main(["score", str(folder), "--members", "musiq,entropy", "--random-weights",
                 "--out", str(ref), "--no-progress", "--workers", "0"]) == 0
    fp32 = {r["path"]: r for r in read_manifest(ref)}
    assert all("precision" not in r for r in fp32.values())
    for r in recs:   # hand-crafted members are untouched by the flag
        assert r["raw"]["entropy"] == fp32[r["path"]]["raw"]["entropy"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["score", str(folder), "--members", "piqe,entropy", "--precision", "int8", "--out", str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and not (tmp_path / "x.jsonl").exists()
    assert "--precision" in capsys.readouterr().err
