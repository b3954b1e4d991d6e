"""Colour correction of a restored image towards its input (``--color-fix none|adain|wavelet``).

As StableSR and SUPIR do after their networks: ``adain`` matches the per-channel mean and standard
deviation of the output to the input's; ``wavelet`` keeps the output's high frequencies and takes the
low frequencies (the sum of five dilated 3×3 blurs, dilations 1..16, at the output's size) from the input
resized to the output's size. :class:`ColorFixed` applies either to every model call (an image, a
tile, a face crop); :func:`adain_canvas` applies ``adain`` once to a whole tiled result in place, with
the statistics of the whole input and output (per-tile statistics would show the tiles).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["COLOR_FIXES", "DEFAULT_COLOR_FIX", "adain_fix", "wavelet_fix", "low_pass", "ColorFixed", "adain_canvas",
           "check_color_fix"]

COLOR_FIXES = ("none", "adain", "wavelet")
DEFAULT_COLOR_FIX = "none"  # measured: docs/guides/large-images-and-video.md, "Colour"
LEVELS = 5
_EPS = 1e-5


def check_color_fix(name: str) -> str:
    if name not in COLOR_FIXES:
        raise ValueError(f"--color-fix must be one of {', '.join(COLOR_FIXES)}, got {name!r}")
    return name


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(-2)
    return flat.mean(-1)[..., None, None], flat.std(-1)[..., None, None]


def adain_fix(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` with each channel's mean and std set to those of ``x`` (``(B, 3, H, W)``, sizes may differ)."""
    my, sy = _stats(y.float())
    mx, sx = _stats(x.float())
    return (y - my) / (sy + _EPS) * sx + mx


def low_pass(x: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
    """The low frequencies of ``x`` (``(B, C, H, W)``): ``levels`` 3×3 binomial blurs at dilations 1, 2, 4, ..."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    for i in range(levels):
        d = 2 ** i
        x = F.conv2d(F.pad(x, (d, d, d, d), mode="replicate"), k, dilation=d, groups=x.shape[1])
    return x


def wavelet_fix(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y``'s high frequencies + the low frequencies of ``x`` resized to ``y``'s size."""
    y = y.float()
    if x.shape[-2:] != y.shape[-2:]:
        x = F.interpolate(x.float(), size=y.shape[-2:], mode="bicubic", align_corners=False)
    return y - low_pass(y) + low_pass(x.float())


_FIXES = {"adain": adain_fix, "wavelet": wavelet_fix}


class ColorFixed:
    """``fixed(x, **kw)`` = the colour fix of ``model(x, **kw)`` towards ``x``; other attributes are the model's.
    A non-finite output is returned as it is (for the caller to refuse)."""

    def __init__(self, model: Any, fix: str):
        self.model = model
        self.fix = check_color_fix(fix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.model(x, *args, **kwargs)
        if self.fix == "none" or not bool(torch.isfinite(y).all()):
            return y
        return _FIXES[self.fix](y, x)


def _channel_stats(arr: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    s, s2 = np.zeros(3), np.zeros(3)
    for i in range(0, arr.shape[0], rows):
        chunk = arr[i:i + rows].reshape(-1, 3).astype(np.float64)
        s += chunk.sum(0)
        s2 += (chunk * chunk).sum(0)
    n = arr.shape[0] * arr.shape[1]
    mean = s / n
    return mean, np.sqrt(np.maximum(s2 / n - mean * mean, 0))


def adain_canvas(canvas: np.ndarray, image: np.ndarray, rows: int = 256) -> np.ndarray:
    """:func:`adain_fix` of a uint8 ``(H, W, 3)`` result towards its uint8 input, in place, ``rows`` rows at a
    time (no full-size float copy)."""
    mo, so = _channel_stats(canvas, rows)
    mi, si = _channel_stats(image, rows)
    gain = si / (so + _EPS * 255)
    for i in range(0, canvas.shape[0], rows):
        chunk = canvas[i:i + rows].astype(np.float32)
        canvas[i:i + rows] = np.clip(np.rint((chunk - mo) * gain + mi), 0, 255).astype(np.uint8)
    return canvas
