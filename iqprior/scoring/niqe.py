"""NIQE (Mittal, Soundararajan & Bovik, "Making a 'Completely Blind' Image Quality Analyzer", IEEE SPL 2013).

The published model: a multivariate Gaussian of 36 natural-scene statistics
fitted on pristine images, whose parameters (``mu_pris_param``,
``cov_pris_param``) and 7x7 window ship with basicsr
(``basicsr/metrics/niqe_pris_params.npz``, Apache-2.0, from the authors'
MATLAB release). This is our batched torch version of basicsr's
``calculate_niqe`` (the reference, checked within 1e-3 relative on real
photos by ``tests/iqprior/scoring/test_niqe_brisque.py``), the statistics in
float64:

1. Y of YCbCr (BT.601, MATLAB's ``rgb2ycbcr``: 16..235), rounded to integers
   (float32 steps where the reference's rounding depends on them);
   cropped to whole 96x96 blocks;
2. at two scales (the second a MATLAB-style antialiased bicubic ×1/2), MSCN
   coefficients ``(I - mu) / (sigma + 1)`` with the 7x7 window (replicated
   borders);
3. per block, an AGGD fit of the coefficients and of their products with the
   four neighbours (circular within the block), 18 numbers per scale;
4. a Gaussian fitted to the blocks' features (NaN-tolerant as the reference);
   the score is the Mahalanobis-like distance to the pristine model.

Input ``(B, 3, H, W)`` RGB in [0, 1], at least 96x96; output ``(B,)``, lower
is better (about 2-3 for sharp natural photos, higher when blurred, noisy or
compressed). Not differentiable (the AGGD shape is a grid search).
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BLOCK = 96
PARAMS_FILE = "basicsr/metrics/niqe_pris_params.npz"
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
YCBCR_Y = (65.481, 128.553, 24.966)  # R, G, B weights for [0, 1] inputs, + 16


def params_path() -> Path:
    """basicsr's pristine-model file, found without importing basicsr."""
    spec = importlib.util.find_spec("basicsr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("NIQE's pristine model ships with basicsr, which is not installed: "
                                "pip install --no-build-isolation basicsr")
    path = Path(next(iter(spec.submodule_search_locations))).parent / PARAMS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"basicsr is installed but has no {PARAMS_FILE} ({path})")
    return path


@functools.lru_cache(maxsize=1)
def _aggd_tables() -> tuple[torch.Tensor, ...]:
    """The shape grid 0.2:0.001:10 and, per grid value a, rho(a), sqrt(G(1/a)/G(3/a)), G(2/a)/G(1/a)."""
    from scipy.special import gamma

    a = np.arange(0.2, 10.001, 0.001)
    r = np.square(gamma(2 / a)) / (gamma(1 / a) * gamma(3 / a))
    scale = np.sqrt(gamma(1 / a) / gamma(3 / a))
    mean = gamma(2 / a) / gamma(1 / a)
    return tuple(torch.from_numpy(t) for t in (a, r, scale, mean))


def aggd(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """AGGD fit of each row of ``v`` (N, M): shape, left and right scale, and the mean factor per row.

    A row with no negative (or no positive) value gives NaN scales, as the reference's empty means do.
    """
    grid, rho, scale, mean = (t.to(v.device) for t in _aggd_tables())
    neg, pos = v < 0, v > 0
    sq = v * v
    left = torch.sqrt((sq * neg).sum(1) / neg.sum(1))
    right = torch.sqrt((sq * pos).sum(1) / pos.sum(1))
    g = left / right
    rhat = v.abs().mean(1) ** 2 / sq.mean(1)
    rhatnorm = rhat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    idx = ((rho[None] - rhatnorm[:, None]) ** 2).argmin(1)
    idx = torch.where(torch.isnan(rhatnorm), torch.zeros_like(idx), idx)  # numpy's argmin of all-NaN is 0
    return grid[idx], left * scale[idx], right * scale[idx], mean[idx]


def block_features(blocks: torch.Tensor) -> torch.Tensor:
    """The 18 NIQE features of each block, ``(N, h, w) -> (N, 18)``."""
    flat = blocks.flatten(1)
    alpha, bl, br, _ = aggd(flat)
    feats = [alpha, (bl + br) / 2]
    for shift in SHIFTS:
        a, bl, br, m = aggd((blocks * torch.roll(blocks, shift, dims=(1, 2))).flatten(1))
        feats += [a, (br - bl) * m, bl, br]
    return torch.stack(feats, 1)


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    return ((1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1)
            + (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def matlab_resize_matrix(n: int, scale: float, dtype=torch.float64) -> torch.Tensor:
    """``(ceil(n·scale), n)`` matrix of MATLAB's ``imresize`` (bicubic, antialiased when shrinking, symmetric borders)."""
    out = math.ceil(n * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    u = torch.arange(1, out + 1, dtype=dtype) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = left[:, None] + torch.arange(math.ceil(width) + 2, dtype=dtype)[None]
    d = u[:, None] - taps
    w = scale * _cubic(d * scale) if scale < 1 else _cubic(d)
    w = w / w.sum(1, keepdim=True)
    idx = taps.long() - 1                                    # 0-based
    idx = torch.where(idx < 0, -idx - 1, idx)                # symmetric: mirror including the edge pixel
    idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
    m = torch.zeros(out, n, dtype=dtype)
    m.scatter_add_(1, idx, w)
    return m


def _mscn(img: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """``(img - mu) / (sigma + 1)`` with the 7x7 window, replicated borders; img ``(B, 1, H, W)`` float32.

    The blurs are summed in float64 and stored as float32, and the variance ``E[x²] - mu²`` is taken in
    float32, as the reference does: in flat regions that difference cancels, and float64 arithmetic there
    moves NIQE by about 1% (astronaut's background).
    """
    k = window.flip(0, 1)[None, None]                        # convolution (the reference's), not correlation
    pad = window.shape[0] // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t.double(), (pad,) * 4, mode="replicate"), k).float()

    mu = blur(img)
    sigma = torch.sqrt((blur(img * img) - mu * mu).abs())
    return ((img - mu) / (sigma + 1)).double()


def _blocks(t: torch.Tensor, size: int) -> torch.Tensor:
    """``(H, W)`` cut into ``(N, size, size)`` blocks."""
    h, w = t.shape
    return t.reshape(h // size, size, w // size, size).permute(0, 2, 1, 3).reshape(-1, size, size)


def niqe_y(y: torch.Tensor, mu_pris: torch.Tensor, cov_pris: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """NIQE of one Y image ``(H, W)`` in 0..255 (float64), cropped to whole blocks; a 0-d tensor."""
    nh, nw = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs images of at least {BLOCK}x{BLOCK} pixels, got {tuple(y.shape)}")
    img = y[: nh * BLOCK, : nw * BLOCK].float()
    feats = []
    for scale in (1, 2):
        norm = _mscn(img[None, None], window)[0, 0]
        feats.append(block_features(_blocks(norm, BLOCK // scale)))
        if scale == 1:
            rh = matlab_resize_matrix(img.shape[0], 0.5).to(img.device)
            rw = matlab_resize_matrix(img.shape[1], 0.5).to(img.device)
            img = (rh @ (img.double() / 255) @ rw.T).float() * 255
    dist = torch.cat(feats, 1)
    mu = torch.nanmean(dist, 0)
    rows = dist[~torch.isnan(dist).any(1)]
    cov = torch.cov(rows.T)
    inv = torch.linalg.pinv((cov_pris + cov) / 2)
    d = mu_pris - mu
    return torch.sqrt(d @ inv @ d)


def y_channel(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] ``(B, 3, H, W)`` -> Y of YCbCr in 16..235, rounded half to even, ``(B, H, W)`` float32.

    As the reference: the weighted sum in float64, stored as float32 in [0, 1], times 255 in float32, then
    rounded (a Y of exactly 198.5 in float32 becomes 198, not 199).
    """
    x = x.float().double()
    y = x[:, 2] * YCBCR_Y[2] + x[:, 1] * YCBCR_Y[1] + x[:, 0] * YCBCR_Y[0] + 16.0
    return torch.round((y / 255).float() * 255)


class NIQE(nn.Module):
    """The ``niqe`` member: ``forward(x)`` -> ``(B,)`` NIQE, lower is better."""

    def __init__(self, files: dict[str, Path] | None = None):
        """``files``: ``{"niqe_pris_params.npz": path}`` (the members' loader passes it); ``None`` = basicsr's."""
        super().__init__()
        path = params_path() if files is None else files[Path(PARAMS_FILE).name]
        with np.load(path, allow_pickle=False) as p:
            mu, cov, window = p["mu_pris_param"], p["cov_pris_param"], p["gaussian_window"]
        self.register_buffer("mu_pris", torch.from_numpy(np.asarray(mu, np.float64)).reshape(-1), persistent=False)
        self.register_buffer("cov_pris", torch.from_numpy(np.asarray(cov, np.float64)), persistent=False)
        self.register_buffer("window", torch.from_numpy(np.asarray(window, np.float64)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB images, got {tuple(x.shape)}")
        y = y_channel(x.detach().clamp(0, 1))
        return torch.stack([niqe_y(yi, self.mu_pris, self.cov_pris, self.window) for yi in y]).float()
