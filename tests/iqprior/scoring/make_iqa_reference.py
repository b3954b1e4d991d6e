"""Real photos (and degraded copies) for the NIQE / BRISQUE parity tests, and how the BRISQUE numbers were made.

The photos are scikit-image's bundled ones (in its wheel, no download; public domain / CC0). Degradations use
only numpy and scipy (float64, rounded to 8 bits), so the pixels do not depend on an image codec's version.

BRISQUE's reference is OpenCV contrib's ``cv2.quality.QualityBRISQUE``, which cannot live in the project's
environment (``opencv-contrib-python`` replaces its ``cv2``). It was run in a throwaway venv::

    python -m tests.iqprior.scoring.make_iqa_reference write /tmp/iqa-ref           # project venv: the PNGs
    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install opencv-contrib-python-headless numpy
    /tmp/ref/bin/python tests/iqprior/scoring/make_iqa_reference.py score /tmp/iqa-ref   # prints the JSON

with the model files of Debian's ``opencv-data`` (``/usr/share/opencv4/quality``). The printed numbers are
``BRISQUE_OPENCV`` in ``test_niqe_brisque.py``. NIQE's reference (basicsr) is installed, so that test runs it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

# (photo, degradation, level): full-size photos, Gaussian blur sigma (px), Gaussian noise sigma (8-bit levels)
CASES = [("astronaut", "none", 0), ("chelsea", "none", 0), ("coffee", "none", 0), ("camera", "none", 0),
         ("rocket", "none", 0), ("astronaut", "blur", 2), ("chelsea", "blur", 4), ("coffee", "noise", 16),
         ("camera", "noise", 8)]


def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as RGB uint8 (grey ones repeated on three channels)."""
    import skimage.data

    a = getattr(skimage.data, name)()
    return a if a.ndim == 3 else np.repeat(a[..., None], 3, -1)


def degrade(a: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """``none``, ``blur`` (Gaussian, sigma px) or ``noise`` (Gaussian, sigma levels), rounded to uint8."""
    if kind == "none" or level == 0:
        return a
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        out = gaussian_filter(a.astype(np.float64), (level, level, 0))
    elif kind == "noise":
        out = a + np.random.default_rng(seed).normal(0.0, level, a.shape)
    else:
        raise ValueError(kind)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def case_name(case: tuple[str, str, float]) -> str:
    return f"{case[0]}-{case[1]}{case[2]:g}.png"


def write(directory: str) -> None:
    import cv2

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        cv2.imwrite(str(out / case_name(case)), degrade(photo(case[0]), case[1], case[2])[:, :, ::-1])


def score(directory: str) -> None:
    """In the throwaway venv: OpenCV contrib's BRISQUE of every case (needs only cv2 and numpy)."""
    import cv2

    q = "/usr/share/opencv4/quality"
    res = {"opencv": cv2.__version__}
    for case in CASES:
        img = cv2.imread(str(Path(directory) / case_name(case)), cv2.IMREAD_COLOR)
        res[case_name(case)] = cv2.quality.QualityBRISQUE_compute(img, f"{q}/brisque_model_live.yml",
                                                                  f"{q}/brisque_range_live.yml")[0]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    {"write": write, "score": score}[sys.argv[1]](sys.argv[2])
