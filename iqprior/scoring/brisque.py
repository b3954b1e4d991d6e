"""BRISQUE (Mittal, Moorthy & Bovik, "No-Reference Image Quality Assessment in the Spatial Domain", IEEE TIP 2012).

The published model: an epsilon-SVR (RBF kernel, 774 support vectors) trained on
the LIVE database, with the feature ranges it was scaled by, as OpenCV contrib's
``quality`` module ships them (``brisque_model_live.yml``,
``brisque_range_live.yml``; BSD-3-Clause / Apache-2.0; Debian's ``opencv-data``
installs them in ``/usr/share/opencv4/quality``). This is our version of
OpenCV contrib's ``cv::quality::QualityBRISQUE`` (the reference, checked within
1e-3 relative on real photos by ``tests/iqprior/scoring/test_niqe_brisque.py``)
built on the core OpenCV that iqprior depends on (the contrib module is not
needed), float32 where the reference is:

1. 8-bit grey by the installed OpenCV's ``cvtColor`` (BT.601 in 15-bit fixed
   point in OpenCV 4.10 and 5.1), scaled to [0, 1] by a float32 factor;
2. at two scales (the second ``cv2.resize`` to half size, bicubic, no
   antialiasing), MSCN coefficients ``(I - mu) / (sigma + 1/255)`` with
   ``cv2.GaussianBlur`` 7x7, sigma 7/6, replicated borders (OpenCV's own blur:
   the variance ``E[I²] - mu²`` cancels in flat regions, so the blur's last bits
   matter);
3. a GGD fit of the coefficients and AGGD fits of their products with four
   neighbours (zero beyond the border): 18 features per scale;
4. the 36 features scaled to [-1, 1] by the model's ranges, the SVR's output
   clamped to [0, 100].

Input ``(B, 3, H, W)`` RGB in [0, 1] (quantised to 8 bits first, as the LIVE
images the model was fitted on); output ``(B,)``, lower is better (about 0-20
for clean photos, 40-70 when blurred, noisy or compressed). Not differentiable.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODEL_FILE = "brisque_model_live.yml"
RANGE_FILE = "brisque_range_live.yml"
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def read_opencv_yaml(path: str | Path) -> dict:
    """An OpenCV FileStorage YAML file as plain data (``!!opencv-matrix`` nodes become float64 arrays)."""
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def matrix(loader, node):
        m = loader.construct_mapping(node, deep=True)
        return np.asarray(m["data"], np.float64).reshape(int(m["rows"]), int(m["cols"]))

    Loader.add_constructor("tag:yaml.org,2002:opencv-matrix", matrix)
    try:
        text = Path(path).read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not an OpenCV FileStorage YAML file (not ASCII text)") from None
    if not text.startswith("%YAML:1.0"):
        raise ValueError(f"{path} is not an OpenCV FileStorage YAML file (no '%YAML:1.0' header)")
    try:
        return yaml.load(text.split("\n", 1)[1], Loader=Loader)  # noqa: S506 (a SafeLoader with one data tag)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: unreadable OpenCV YAML ({str(e).splitlines()[0][:200]})") from None


@functools.lru_cache(maxsize=4)
def load_model(model_path: str, range_path: str) -> dict[str, np.ndarray | float]:
    """The SVR (support vectors, coefficients, rho, gamma) and the feature ranges, checked."""
    svm = read_opencv_yaml(model_path).get("opencv_ml_svm")
    rng = read_opencv_yaml(range_path).get("range")
    if not isinstance(svm, dict) or svm.get("svmType") != "EPS_SVR" or svm.get("kernel", {}).get("type") != "RBF":
        raise ValueError(f"{model_path} is not an OpenCV EPS_SVR model with an RBF kernel")
    sv = np.asarray(svm["support_vectors"], np.float64)
    (df,) = svm["decision_functions"]
    alpha = np.asarray(df["alpha"], np.float64)
    n = int(svm["var_count"])
    if sv.shape != (int(svm["sv_total"]), n) or alpha.shape != (sv.shape[0],) or "index" in df:
        raise ValueError(f"{model_path}: support vectors {sv.shape}, coefficients {alpha.shape}: not one "
                         f"decision function over all vectors")
    if not isinstance(rng, np.ndarray) or rng.shape != (2, n):
        raise ValueError(f"{range_path}: expected a 2x{n} 'range' matrix")
    return {"sv": sv, "alpha": alpha, "rho": float(df["rho"]), "gamma": float(svm["kernel"]["gamma"]),
            "low": rng[0], "high": rng[1]}


@functools.lru_cache(maxsize=1)
def _gamma_grid() -> tuple[np.ndarray, np.ndarray]:
    """The reference's search grid (0.2, +0.001 by repeated addition, < 10) and rho(a) on it."""
    from scipy.special import gamma

    a = np.cumsum(np.r_[0.2, np.full(9800, 0.001)])
    a = a[a < 10]
    r = gamma(2 / a) ** 2 / (gamma(1 / a) * gamma(3 / a))
    return a, r


def aggd_fit(v: np.ndarray) -> tuple[float, float, float]:
    """Left sigma, right sigma and shape of the values ``v`` (float32).

    As the reference: each value taken as float64; zeros and NaNs count on neither side, but in the total.
    """
    grid, rho = _gamma_grid()
    v = v.ravel().astype(np.float64)
    pos, neg = v[v > 0], v[v < 0]
    if pos.size == 0 or neg.size == 0:
        return math.nan, math.nan, math.nan
    possq, negsq = float(np.dot(pos, pos)), float(np.dot(neg, neg))
    left, right = math.sqrt(negsq / neg.size), math.sqrt(possq / pos.size)
    g = left / right
    total = v.size
    rhat = ((float(pos.sum()) - float(neg.sum())) / total) ** 2 / ((negsq + possq) / total)
    rhatnorm = rhat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    diff = np.abs(rho - rhatnorm)
    rising = np.flatnonzero(diff[1:] > diff[:-1])     # the reference stops at the first step that gets worse
    return left, right, float(grid[rising[0] if rising.size else len(grid) - 1])


def _mscn(img: np.ndarray) -> np.ndarray:
    """``(I - mu) / (sigma + 1/255)``, float32, with OpenCV's own 7x7 Gaussian blur (sigma 7/6, replicated borders).

    Where float32 rounding makes the variance ``E[I²] - mu²`` negative (flat regions) the reference's square
    root is NaN, and so is the coefficient: such pixels drop out of the fits (they still count in totals).
    """
    import cv2

    def blur(t: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(t, (7, 7), 7.0 / 6.0, 0.0, borderType=cv2.BORDER_REPLICATE)

    mu = blur(img)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(blur(img * img) - mu * mu) + np.float32(1.0 / 255)
    return ((img - mu) / sigma).astype(np.float32)


def _shifted(m: np.ndarray, di: int, dj: int) -> np.ndarray:
    """``out[i, j] = m[i + di, j + dj]``, zero where that falls outside."""
    h, w = m.shape
    out = np.zeros_like(m)
    out[max(0, -di):h - max(0, di), max(0, -dj):w - max(0, dj)] = m[max(0, di):h - max(0, -di),
                                                                   max(0, dj):w - max(0, -dj)]
    return out


def features(grey: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of one grey image ``(H, W)``, float32 in [0, 1]."""
    import cv2

    feats: list[float] = []
    for scale in (1, 2):
        img = grey if scale == 1 else cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2),
                                                 interpolation=cv2.INTER_CUBIC)
        mscn = _mscn(img)
        left, right, g = aggd_fit(mscn)
        feats += [g, float(np.float32(left * left + right * right)) / 2]
        for di, dj in SHIFTS:
            left, right, g = aggd_fit(mscn * _shifted(mscn, di, dj))
            g1, g2, g3 = (math.gamma(k / g) if math.isfinite(g) else math.nan for k in (1, 2, 3))
            mean = (right - left) * (g2 / g1) * math.sqrt(g1) / math.sqrt(g3)
            feats += [g, mean, left ** 2, right ** 2]
    return np.asarray(feats, np.float32)


def grey_8bit(x: torch.Tensor) -> np.ndarray:
    """RGB [0, 1] ``(B, 3, H, W)`` -> 8-bit grey by the installed OpenCV's ``cvtColor``, /255: ``(B, H, W)`` float32."""
    import cv2

    q = torch.round(x.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    grey = np.stack([cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY) for im in q])
    return grey.astype(np.float32) * np.float32(1.0 / 255)  # OpenCV's convertTo(CV_32F, 1/255.): a float32 factor


class BRISQUE(nn.Module):
    """The ``brisque`` member: ``forward(x)`` -> ``(B,)`` BRISQUE in [0, 100], lower is better.

    ``files`` maps the two file names to paths (the members' loader passes them); ``None`` looks them up
    in the weights registry.
    """

    def __init__(self, files: dict[str, Path] | None = None):
        super().__init__()
        if files is None:
            from ..weights import resolve

            files = {n: resolve(n) for n in (MODEL_FILE, RANGE_FILE)}
        m = load_model(str(files[MODEL_FILE]), str(files[RANGE_FILE]))
        for k in ("sv", "low", "high"):
            self.register_buffer(k, torch.from_numpy(np.asarray(m[k])).float(), persistent=False)
        self.register_buffer("alpha", torch.from_numpy(np.asarray(m["alpha"])), persistent=False)  # float64
        self.rho, self.gamma = float(m["rho"]), float(m["gamma"])

    def predict(self, feats: torch.Tensor) -> torch.Tensor:
        """SVR output for features ``(B, 36)``, clamped to [0, 100] as the reference does.

        Features scaled and differenced in float32 as OpenCV does, the kernel and the sum in float64. The
        sum of 774 kernel values weighted by +-1024 cancels to a few units: OpenCV's float32 kernel values
        leave about 1e-3 of rounding noise in its own scores, which is how close two float32 versions agree.
        """
        f = feats.float()
        scaled = -1 + 2 * (f - self.low) / (self.high - self.low)
        d = ((scaled[:, None, :] - self.sv[None]).double() ** 2).sum(-1)
        k = torch.exp(-self.gamma * d)
        return ((k * self.alpha).sum(1) - self.rho).clamp(0, 100).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB images, got {tuple(x.shape)}")
        if min(x.shape[-2:]) < 16:
            raise ValueError(f"BRISQUE needs images of at least 16x16 pixels, got {tuple(x.shape[-2:])}")
        grey = grey_8bit(x.detach())
        feats = torch.from_numpy(np.stack([features(g) for g in grey])).to(x.device)
        return self.predict(feats)

