"""``iqprior score --import FILE.csv --column NAME --out M.jsonl``: a CSV of scores -> manifest + calibration.

The CSV here is synthetic, in the layout of the IQPIR authors' ``FFHQ_512_score_80.csv``
(``image_name,musiq``; values about in [0, 1], one negative).
"""
from __future__ import annotations

import json

import pytest

from iqprior.cli import main
from iqprior.data.datasets import resolve_scores
from iqprior.scoring.manifest import scores_by_path

VALUES = [0.830661, 0.875228, -0.004967, 0.9, 0.7, 0.5, 0.929694, 0.1, 0.65, 0.89]


def _csv(path, rows, header="image_name,musiq"):
    path.write_text(header + "\n" + "".join(f"{n},{v}\n" for n, v in rows))
    return path


@pytest.fixture
def scores_csv(tmp_path):
    return _csv(tmp_path / "FFHQ_scores.csv", [(f"{i:05d}.png", v) for i, v in enumerate(VALUES)])


def test_import_raw_levels(scores_csv, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert main(["score", "--import", str(scores_csv), "--column", "musiq", "--out", str(out)]) == 0
    recs = scores_by_path(out)
    assert len(recs) == len(VALUES)
    assert [recs[f"{i:05d}.png"]["level"] for i in range(len(VALUES))] == [8, 8, 0, 9, 7, 5, 9, 1, 6, 8]
    assert recs["00002.png"]["score"] == 0.0 and recs["00002.png"]["raw"] == {"csv:musiq": -0.004967}
    err = capsys.readouterr().err
    assert "1 of 10 musiq value(s) outside [0, 1] clipped" in err
    cal = json.loads((tmp_path / "m.calibration.json").read_text())["members"]["csv:musiq"]
    assert (cal["min"], cal["max"], cal["count"]) == (-0.004967, 0.929694, 10)
    summary = json.loads((tmp_path / "m.summary.json").read_text())
    assert summary["levels_raw"] == [1, 1, 0, 0, 0, 1, 1, 1, 3, 2] and summary["clipped"] == 1
    # the manifest feeds training / finetune as any scored manifest
    paths = [tmp_path / f"{i:05d}.png" for i in range(3)]
    assert resolve_scores(paths, str(out), tmp_path, None) == [(0.830661, 8), (0.875228, 8), (0.0, 0)]


def test_import_min_max(scores_csv, tmp_path):
    out = tmp_path / "m.jsonl"
    assert main(["score", "--import", str(scores_csv), "--column", "musiq", "--out", str(out), "--calibrate"]) == 0
    recs = scores_by_path(out)
    lo, hi = -0.004967, 0.929694
    for i, v in enumerate(VALUES):
        assert recs[f"{i:05d}.png"]["score"] == pytest.approx((v - lo) / (hi - lo + 1e-5))
    assert recs["00006.png"]["level"] == 9 and recs["00002.png"]["level"] == 0
    assert {r["normalised_by"] for r in recs.values()} == {"calibration"}


@pytest.mark.parametrize("rows,column,message", [
    ([("a.png", 0.5)], "score", "has no column 'score' (columns: image_name, musiq)"),
    ([("a.png", "high")], "musiq", "line 2: musiq value 'high' of a.png is not a number"),
    ([("a.png", 0.5), ("b.png", "nan")], "musiq", "line 3: musiq value 'nan' of b.png is not finite"),
    ([("a.png", "inf")], "musiq", "is not finite"),
    ([], "musiq", "has a header but no rows"),
])
def test_import_errors_are_one_line(tmp_path, capsys, rows, column, message):
    path = _csv(tmp_path / "s.csv", rows)
    out = tmp_path / "m.jsonl"
    assert main(["score", "--import", str(path), "--column", column, "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iqprior score: error:") and message in err[0]
    assert not out.exists()


def test_import_needs_column_and_out(scores_csv, tmp_path, capsys):
    assert main(["score", "--import", str(scores_csv), "--out", str(tmp_path / "m.jsonl")]) != 0
    assert "--import needs --column" in capsys.readouterr().err
