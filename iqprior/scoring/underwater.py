"""Hand-crafted underwater image quality measures: UIQM and UCIQE (no weights, higher is better).

**UIQM** — Panetta, Gao and Agaian, "Human-Visual-System-Inspired Underwater
Image Quality Measures", IEEE J. Oceanic Eng. 41(3), 2016:
``UIQM = 0.0282 UICM + 0.2953 UISM + 3.5753 UIConM``.

- UICM (colourfulness): opponent channels ``RG = R - G`` and ``YB = (R + G)/2 - B``
  on the 0..255 scale; asymmetric alpha-trimmed mean (``alpha_L = alpha_R = 0.1``:
  ``T_L = ceil(0.1 K)`` lowest and ``T_R = floor(0.1 K)`` highest values dropped)
  and the variance about it over all K pixels;
  ``UICM = -0.0268 sqrt(mu_RG^2 + mu_YB^2) + 0.1586 sqrt(s2_RG + s2_YB)``.
- UISM (sharpness): per channel, the Sobel gradient magnitude (borders
  replicated) times the channel; EME over ``window`` x ``window`` blocks,
  ``2 / (k1 k2) * sum log(max / min)`` (blocks with a zero max or min add 0);
  weighted ``0.299 R + 0.587 G + 0.114 B``.
- UIConM (contrast): over the same blocks of the RGB image (max and min over
  the block's pixels and channels), ``r = (max - min) / (max + min)``,
  ``UIConM = -1 / (k1 k2) * sum r log r`` (blocks with ``r = 0`` add 0).

Variant followed: the paper's formulas with the conventions of the Python port
used by most underwater-enhancement papers (xahidbuffon/FUnIE-GAN
``Evaluation/uqim_utils.py``: 10 x 10 blocks, the image cropped to whole blocks,
UIConM with plain arithmetic instead of the PLIP operators, on the RGB blocks).
Where the port departs from the paper we follow the paper: ``lambda_B = 0.114``
(the port has 0.144), the trimmed mean sums the ``K - T_L - T_R`` kept values
(the port skips one more), and flat blocks count 0 in UISM (the port's
normalisation by the largest gradient gives NaN for a flat image). With those
three set as in the port (``UIQMConfig(lambdas=(0.299, 0.587, 0.144),
port_trim=True)``) the two agree to float precision. Images smaller than a
block use one block of the whole image. Typical range: 0 (flat gray) to about
5; enhanced UIEB images score about 2.7-3.1 (IQPFR Table 6).

**UCIQE** — Yang and Sowmya, "An Underwater Color Image Quality Evaluation
Metric", IEEE TIP 24(12), 2015: ``UCIQE = 0.4680 sigma_c + 0.2745 con_l +
0.2576 mu_s``. Variant followed: the authors' widely distributed MATLAB
``UCIQE.m`` (as in bilityniu/underwater_image_fusion; the numbers papers
report, e.g. 0.57-0.60 in IQPFR Table 6): CIELab (sRGB, D65) in its 8-bit
encoding divided by 255 (``L' = L/100``, ``a' = (a + 128)/255``,
``b' = (b + 128)/255``, not rounded here so gradients flow), chroma
``C = sqrt(a'^2 + b'^2)``, ``sigma_c = sqrt(mean |1 - (mean C / C)^2|)``,
``con_l`` = 99th minus 1st percentile of ``L'`` (``stretchlim``), saturation
``mu_s = mean(C / sqrt(C^2 + L'^2))``. One departure, documented: a flat
luminance gets ``con_l = 0`` (MATLAB's ``stretchlim`` returns [0, 1] for a flat
image, i.e. maximal contrast). Range: 0 to about 0.9 (mu_s < 1, con_l <= 1).

Both modules take ``(B, 3, H, W)`` RGB float in [0, 1] and return ``(B,)``
float32 raw scores; gradients reach the input (almost everywhere).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..io import check_image_batch

UIQM_COEFFS = (0.0282, 0.2953, 3.5753)
UCIQE_COEFFS = (0.4680, 0.2745, 0.2576)
_FLAT = 1e-6  # |grad| below this ([0, 1] scale) is float32 rounding of a flat patch; 16-bit steps are 1.5e-5


@dataclass(frozen=True)
class UIQMConfig:
    """Constants of UIQM (defaults: the paper's, with the port's block size)."""

    coeffs: tuple[float, float, float] = UIQM_COEFFS
    window: int = 10                                    # block side of EME / AMEE
    alpha: tuple[float, float] = (0.1, 0.1)             # trimming of UICM's mean (left, right)
    lambdas: tuple[float, float, float] = (0.299, 0.587, 0.114)
    port_trim: bool = False                             # True: the FUnIE-GAN port's trimmed-mean indices


def _check(x: torch.Tensor) -> torch.Tensor:
    check_image_batch(x)
    return x.to(torch.float64)  # float64 inside: exact zeros of flat gradients stay (near) zero


# --------------------------------------------------------------------------- UIQM
def uicm(x: torch.Tensor, alpha: tuple[float, float] = (0.1, 0.1), port_trim: bool = False) -> torch.Tensor:
    """Colourfulness ``(B,)`` of RGB ``x`` in [0, 1] (computed on the 0..255 scale)."""
    x = x * 255.0
    rg = (x[:, 0] - x[:, 1]).flatten(1)
    yb = ((x[:, 0] + x[:, 1]) / 2 - x[:, 2]).flatten(1)
    k = rg.shape[1]
    t_l, t_r = math.ceil(alpha[0] * k), math.floor(alpha[1] * k)
    if k - t_l - t_r < 1:
        t_l = t_r = 0
    start = t_l + 1 if port_trim else t_l

    def stats(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = v.sort(dim=1).values
        mu = s[:, start:k - t_r].sum(dim=1) / (k - t_l - t_r)
        return mu, (v - mu[:, None]).pow(2).mean(dim=1)

    mu_rg, var_rg = stats(rg)
    mu_yb, var_yb = stats(yb)
    return -0.0268 * _safe_sqrt(mu_rg ** 2 + mu_yb ** 2) + 0.1586 * _safe_sqrt(var_rg + var_yb)


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with a finite gradient at 0."""
    return torch.where(v > 0, v.clamp_min(1e-30).sqrt(), torch.zeros_like(v))


def _blocks(x: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-block max and min of ``x`` (B, C, H, W) over ``window`` squares (cropped to whole blocks)."""
    h, w = x.shape[-2:]
    win_h, win_w = min(window, h), min(window, w)
    k2, k1 = h // win_h, w // win_w
    x = x[..., :k2 * win_h, :k1 * win_w]
    mx = F.max_pool2d(x, (win_h, win_w))
    mn = -F.max_pool2d(-x, (win_h, win_w))
    return mx, mn, k1 * k2


def _sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|grad| of each channel of (B, C, H, W) with 3x3 Sobel kernels, borders replicated."""
    c = x.shape[1]
    d = torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], dtype=x.dtype, device=x.device)
    kernels = torch.stack([d, d.t()])[:, None].repeat(c, 1, 1, 1)   # (2C, 1, 3, 3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels, groups=c)
    g = g.view(x.shape[0], c, 2, *x.shape[-2:])
    sq = g.pow(2).sum(dim=2)
    flat = sq <= _FLAT ** 2  # rounding residue of a flat neighbourhood counts as no edge
    return torch.where(flat, torch.zeros_like(sq), sq.clamp_min(_FLAT ** 2).sqrt())


def eme(x: torch.Tensor, window: int = 10) -> torch.Tensor:
    """Enhancement measure ``(B, C)``: ``2/(k1 k2) * sum log(max/min)`` over blocks with max, min > 0."""
    mx, mn, n = _blocks(x, window)
    ok = (mx > 0) & (mn > 0)
    ratio = torch.where(ok, mx / torch.where(ok, mn, torch.ones_like(mn)), torch.ones_like(mx))
    return 2.0 / n * ratio.log().flatten(2).sum(dim=2)


def uism(x: torch.Tensor, window: int = 10, lambdas: tuple[float, float, float] = (0.299, 0.587, 0.114)
         ) -> torch.Tensor:
    """Sharpness ``(B,)``: channel-weighted EME of the Sobel edge maps times the channels."""
    edges = _sobel_magnitude(x) * x
    w = torch.tensor(lambdas, dtype=x.dtype, device=x.device)
    return (eme(edges, window) * w).sum(dim=1)


def uiconm(x: torch.Tensor, window: int = 10) -> torch.Tensor:
    """Contrast ``(B,)``: ``-1/(k1 k2) * sum r log r``, ``r = (max-min)/(max+min)`` per RGB block."""
    mx, mn, n = _blocks(x, window)
    mx, mn = mx.amax(dim=1), mn.amin(dim=1)          # over the channels too
    top, bot = mx - mn, mx + mn
    ok = (top > 0) & (bot > 0)
    r = torch.where(ok, top / torch.where(ok, bot, torch.ones_like(bot)), torch.ones_like(top))
    return -1.0 / n * (r * r.log()).flatten(1).sum(dim=1)


class UIQM(nn.Module):
    """Underwater Image Quality Measure (Panetta et al. 2016): ``(B,3,H,W)`` [0,1] -> ``(B,)``, higher is better."""

    def __init__(self, config: UIQMConfig = UIQMConfig()):
        super().__init__()
        if not isinstance(config, UIQMConfig):
            raise TypeError(f"config must be a UIQMConfig, got {type(config).__name__}")
        if config.window < 1:
            raise ValueError(f"window must be >= 1, got {config.window}")
        self.config = config

    def components(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"uicm", "uism", "uiconm"}``, each ``(B,)``."""
        x = _check(x)
        c = self.config
        return {"uicm": uicm(x, c.alpha, c.port_trim), "uism": uism(x, c.window, c.lambdas),
                "uiconm": uiconm(x, c.window)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.components(x)
        c1, c2, c3 = self.config.coeffs
        return (c1 * parts["uicm"] + c2 * parts["uism"] + c3 * parts["uiconm"]).float()


# --------------------------------------------------------------------------- UCIQE
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))
_WHITE_D65 = (0.95047, 1.0, 1.08883)  # CIE D65, 2 degrees (as skimage)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB [0, 1] ``(B, 3, H, W)`` -> CIELab (D65): L in [0, 100], a and b about [-128, 127]."""
    lin = torch.where(x > 0.04045, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    xyz = xyz / torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    eps = (6.0 / 29.0) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1.0 / 3.0), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def _percentile_range(v: torch.Tensor, low: float = 0.01, high: float = 0.99) -> torch.Tensor:
    """``stretchlim``'s limits as order statistics: first value with cdf > low, first with cdf >= high."""
    n = v.shape[1]
    i_low = min(math.floor(low * n), n - 1)
    i_high = max(min(math.ceil(high * n) - 1, n - 1), 0)
    s = v.sort(dim=1).values
    return s[:, i_high] - s[:, i_low]


class UCIQE(nn.Module):
    """Underwater Colour Image Quality Evaluation (Yang & Sowmya 2015), MATLAB ``UCIQE.m`` variant.

    ``(B, 3, H, W)`` RGB [0, 1] -> ``(B,)``, higher is better, about 0..0.9.
    """

    def __init__(self, coeffs: tuple[float, float, float] = UCIQE_COEFFS):
        super().__init__()
        self.coeffs = tuple(float(c) for c in coeffs)

    def components(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"sigma_c", "con_l", "mu_s"}``, each ``(B,)``."""
        x = _check(x).clamp(0.0, 1.0)
        lab = rgb_to_lab(x)
        lum = (lab[:, 0] / 100.0).flatten(1) + 2.220446049250313e-16      # L * 255/100 / 255 (+ MATLAB eps)
        a = ((lab[:, 1] + 128.0) / 255.0).flatten(1)
        b = ((lab[:, 2] + 128.0) / 255.0).flatten(1)
        chroma = (a * a + b * b).sqrt()                                      # > 0: the encoding is offset
        mu_s = (chroma / (chroma * chroma + lum * lum).sqrt()).mean(dim=1)
        ratio = chroma.mean(dim=1, keepdim=True) / chroma
        dev = (1.0 - ratio * ratio).abs().mean(dim=1)
        sigma_c = _safe_sqrt(dev)
        return {"sigma_c": sigma_c, "con_l": _percentile_range(lum), "mu_s": mu_s}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.components(x)
        c1, c2, c3 = self.coeffs
        return (c1 * p["sigma_c"] + c2 * p["con_l"] + c3 * p["mu_s"]).float()
