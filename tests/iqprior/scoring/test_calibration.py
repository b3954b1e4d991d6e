import json

import pytest
import torch

from iqprior import Calibration


def test_fit_and_normalise_matches_hand_computation():
    cal = Calibration.fit({"musiq": [20.0, 60.0, 40.0], "piqe": [10.0, 30.0, float("nan")]})
    r = cal.members["musiq"]
    assert (r.min, r.max, r.lower_better, r.count) == (20.0, 60.0, False, 3)
    # s = (S - min) / (max - min + 1e-5)
    assert cal.normalise("musiq", torch.tensor(40.0)).item() == pytest.approx(20.0 / (40.0 + 1e-5))
    assert cal.normalise("musiq", torch.tensor(60.0)).item() < 1.0
    # piqe is lower-better in the spec table: flipped, (max - S) / (max - min + eps)
    assert cal.members["piqe"].lower_better and cal.members["piqe"].count == 2
    assert cal.normalise("piqe", torch.tensor(10.0)).item() == pytest.approx(20.0 / (20.0 + 1e-5))
    assert cal.normalise("piqe", torch.tensor(30.0)).item() == 0.0


def test_save_load_roundtrip(tmp_path):
    cal = Calibration.fit({"a": [1.0, 2.0]}, lower_better={"a": True})
    path = cal.save(tmp_path / "cal.json")
    data = json.loads(path.read_text())
    assert data["eps"] == 1e-5 and data["members"]["a"] == {"min": 1.0, "max": 2.0, "lower_better": True, "count": 2}
    assert Calibration.load(path) == cal


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no finite"):
        Calibration.fit({"a": [float("nan")]})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Calibration.load(tmp_path / "bad.json")
    (tmp_path / "inv.json").write_text(json.dumps({"members": {"a": {"min": 3, "max": 1}}}))
    with pytest.raises(ValueError, match="invalid range"):
        Calibration.load(tmp_path / "inv.json")
    with pytest.raises(KeyError, match="no member"):
        Calibration.fit({"a": [1.0]}).normalise("b", 1.0)
