"""The published NR-IQA members NIQE and BRISQUE: parity with their reference implementations on real photos,
worse scores with blur, noise and JPEG, and their place in the scoring table, the CLI and the offline preset."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from iqprior.scoring import PRESETS, SPECS, create_scorer
from iqprior.scoring.members import build_member
from tests.iqprior.scoring.make_iqa_reference import CASES, case_name, degrade, photo

# OpenCV contrib's cv2.quality.QualityBRISQUE on CASES (how: make_iqa_reference.py), by OpenCV major version (the
# member's grey, resize and blur are the installed OpenCV's). The two versions differ by up to 2.5e-3 (astronaut):
# the reference's own float32 rounding.
BRISQUE_OPENCV = {
    "5": {  # opencv-contrib-python-headless 5.1.0
        "astronaut-none0.png": 0.4943566620349884, "chelsea-none0.png": 2.065948247909546,
        "coffee-none0.png": 3.6064369678497314, "camera-none0.png": 0.0, "rocket-none0.png": 9.211797714233398,
        "astronaut-blur2.png": 57.912845611572266, "chelsea-blur4.png": 71.78430938720703,
        "coffee-noise16.png": 30.166805267333984, "camera-noise8.png": 35.25413513183594},
    "4": {  # opencv-contrib-python-headless 4.10.0.84
        "astronaut-none0.png": 0.49681106209754944,
        "chelsea-none0.png": 2.065851926803589,
        "coffee-none0.png": 3.606670618057251,
        "camera-none0.png": 0.0,
        "rocket-none0.png": 9.209365844726562,
        "astronaut-blur2.png": 57.91130447387695,
        "chelsea-blur4.png": 71.78292083740234,
        "coffee-noise16.png": 30.167070388793945,
        "camera-noise8.png": 35.254608154296875},
}


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def niqe():
    return build_member("niqe")


@pytest.fixture(scope="module")
def brisque():
    return build_member("brisque")


def test_brisque_matches_opencv_contrib(brisque):
    import cv2

    refs = BRISQUE_OPENCV[cv2.__version__.split(".")[0]]
    assert [case_name(c) for c in CASES] == list(refs)
    for case in CASES:
        ref = refs[case_name(case)]
        ours = float(brisque(_tensor(degrade(photo(case[0]), case[1], case[2]))))
        # 1e-3 relative; near 0 (clean photos, where the SVR's +-1024-weighted kernels cancel) 2.5e-3 absolute:
        # the reference's own float32 noise there (contrib 4.10.0.84 and 5.1.0 give 0.49681 and 0.49436)
        assert abs(ours - ref) <= max(1e-3 * abs(ref), 2.5e-3), (case, ours, ref)


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 1, 4, 5, 7)], ids=case_name)
def test_niqe_matches_basicsr(niqe, case):
    from iqprior.basicsr_compat import import_basicsr

    calculate_niqe = import_basicsr("basicsr.metrics.niqe").calculate_niqe
    a = degrade(photo(case[0]), case[1], case[2])
    ref = calculate_niqe(a[:, :, ::-1].astype(np.float64), 0)   # BGR, HWC, 0..255, Y channel
    ours = float(niqe(_tensor(a)))
    assert abs(ours - ref) <= 1e-3 * ref, (ours, ref)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    if quality >= 100:
        return a
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


SWEEPS = {"blur": (0, 1, 2, 3, 4), "noise": (0, 8, 16, 32), "jpeg": (100, 40, 20, 10)}


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_scores_get_worse_with_blur_noise_and_jpeg(niqe, brisque, name):
    """Both lower-is-better scores rise strictly along each ladder (astronaut: a 384 px centre crop)."""
    a = photo(name)
    a = a[64:448, 64:448] if name == "astronaut" else a
    for kind, levels in SWEEPS.items():
        imgs = torch.cat([_tensor(_jpeg(a, q) if kind == "jpeg" else degrade(a, kind, q)) for q in levels])
        for member in (niqe, brisque):
            s = member(imgs).tolist()
            assert all(x < y for x, y in zip(s, s[1:])), (name, kind, member.spec.name, s)


def test_specs_and_offline_preset():
    assert PRESETS["offline"] == ("niqe", "brisque")
    for name in PRESETS["offline"]:
        spec = SPECS[name]
        assert spec.lower_better and spec.licence and spec.weights and not spec.differentiable
        assert spec.normalise(torch.tensor(spec.score_range[0])) == 1.0  # the best raw score normalises to 1
    scorer = create_scorer("offline", device="cpu")
    assert scorer.names == ["niqe", "brisque"] and not scorer.random_weights
    with pytest.raises(ValueError, match="published model"):
        build_member("niqe", pretrained=False)


def test_niqe_refuses_images_smaller_than_a_block(niqe):
    with pytest.raises(ValueError, match="at least 96x96"):
        niqe(torch.rand(1, 3, 95, 200))


def test_score_cli_keeps_each_members_raw(tmp_path):
    import cv2

    from iqprior.cli import main

    src = tmp_path / "photos"
    src.mkdir()
    clean = photo("chelsea")
    for tag, a in (("clean", clean), ("blurred", degrade(clean, "blur", 3))):
        cv2.imwrite(str(src / f"{tag}.png"), a[:, :, ::-1])
    out = tmp_path / "scores.jsonl"
    assert main(["score", str(src), "--members", "niqe,brisque", "--calibrate", "--out", str(out),
                 "--no-progress"]) == 0
    recs = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(recs["clean.png"]["raw"]) == {"niqe", "brisque"}
    for m in ("niqe", "brisque"):  # raw: lower is better; the ensemble score: higher is better
        assert recs["clean.png"]["raw"][m] < recs["blurred.png"]["raw"][m]
    assert recs["clean.png"]["score"] > recs["blurred.png"]["score"]


def test_missing_brisque_model_names_the_fix(monkeypatch, tmp_path):
    from iqprior import weights
    from iqprior.scoring.members import MemberWeightsMissing

    monkeypatch.setattr(weights, "OPENCV_DATA_DIRS", (str(tmp_path / "none"),))
    with pytest.raises(MemberWeightsMissing, match="apt-get install opencv-data"):
        build_member("brisque")
