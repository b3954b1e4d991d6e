"""Manifest and calibration readers accept lines of any shape: skipped, warned about, counted."""
import json
import math

import pytest
import torch

from iqprior.cli import main
from iqprior.scoring.calibration import Calibration
from iqprior.scoring.manifest import raw_by_member, read_manifest, scores_by_path

GOOD = {"path": "a.png", "raw": {"piqe": 10.0}, "score": 0.5, "level": 5}
HOSTILE_LINES = [
    "[" * 200_000 + "]" * 200_000,                     # RecursionError in json
    '{"path": ' + "[" * 100_000 + "]" * 100_000 + "}",
    json.dumps({"path": ["a", "b"]}),                  # unhashable path
    json.dumps({"path": 7}),
    json.dumps({"path": ""}),
    json.dumps({"path": "b.png", "raw": [1, 2]}),
    json.dumps({"path": "c.png", "raw": {"piqe": "x"}}),
    json.dumps({"path": "d.png", "score": "high"}),
    json.dumps({"path": "e.png", "level": "9"}),
    json.dumps({"path": "f.png", "error": 3}),
    '{"path": "g.png", "raw": {"piqe": Infinity}}',
    '{"path": "h.png", "score": NaN}',
    "\x00\xff garbage",
    "42",
]


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_lines_of_any_shape_are_skipped_and_counted(tmp_path):
    path = _write(tmp_path / "m.jsonl", [json.dumps(GOOD), *HOSTILE_LINES])
    counts = {}
    with pytest.warns(UserWarning, match=f"skipped {len(HOSTILE_LINES)} "):
        recs = read_manifest(path, counts=counts)
    assert recs == [GOOD] and counts["skipped_lines"] == len(HOSTILE_LINES)
    with pytest.warns(UserWarning):
        assert list(scores_by_path(path)) == ["a.png"]


def test_non_finite_raw_scores_never_reach_a_calibration():
    cal = Calibration.fit({"piqe": [1.0, math.inf, 3.0, -math.inf, math.nan]})
    assert (cal.members["piqe"].min, cal.members["piqe"].max, cal.members["piqe"].count) == (1.0, 3.0, 2)
    with pytest.raises(ValueError, match="no finite"):
        Calibration.fit({"piqe": torch.tensor([math.inf, math.nan])})
    raw = raw_by_member([{"path": "a", "raw": {"piqe": math.inf}}, {"path": "b", "raw": {"piqe": 2.0}},
                         {"path": "c", "raw": {"piqe": "x"}}, {"path": "d", "raw": [1]}])
    assert raw == {"piqe": [2.0]}


def test_score_run_goes_on_past_a_hostile_manifest_and_a_bomb(tmp_path, face_paths):
    import shutil

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(face_paths[0], root / "face.png")
    (root / "bomb.png").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2000000 +X 2000000\n" + b"\x02" * 64)
    out = tmp_path / "out" / "scores.jsonl"
    out.parent.mkdir()
    _write(out, HOSTILE_LINES)
    with pytest.warns(UserWarning, match="skipped"):
        rc = main(["score", str(root), "--members", "offline", "--out", str(out), "--calibrate", "--no-progress"])
    assert rc == 0
    recs = {r["path"]: r for r in read_manifest(out)}
    assert "limit" in recs["bomb.png"]["error"] and "score" in recs["face.png"]
    summary = json.loads((tmp_path / "out" / "scores.summary.json").read_text())
    assert summary["skipped_lines"] == len(HOSTILE_LINES)


def test_level_out_of_range_is_refused(tmp_path):
    from iqprior.data.datasets import resolve_scores

    p = tmp_path / "a.png"
    for level in (10, -1, 2.5, True):
        with pytest.raises(ValueError, match="level"):
            resolve_scores([p], [{"path": "a.png", "score": 0.5, "level": level}], tmp_path, None)


@pytest.mark.parametrize("text", [
    '{"members": []}',                                          # found by fuzzing: AttributeError escaped
    '{"members": {"piqe": 3}}',
    '{"members": {"piqe": {"min": 0, "max": 1, "lower_better": "false"}}}',
    '{"members": {"piqe": {"min": 0, "max": 1}}, "eps": Infinity}',
    '{"members": ' + "[" * 100_000 + "]" * 100_000 + "}",       # RecursionError escaped
    "[1, 2]",
])
def test_calibration_files_of_any_shape_are_one_value_error(tmp_path, text):
    p = tmp_path / "cal.json"
    p.write_text(text)
    with pytest.raises(ValueError) as err:
        Calibration.load(p)
    assert "\n" not in str(err.value)
