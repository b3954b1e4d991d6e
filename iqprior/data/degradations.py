"""Synthetic LQ images for training (IQPFR, arXiv 2503.09294, App. 6.1.3, Eq. 16).

    I_l = {[(I_h ⊛ k_σ)↓_r + n_δ]_JPEG_q}↑_512

"σ, r, δ and q are randomly sampled from [1, 15], [1, 30], [0, 20] and [30, 90]
respectively" — the degradation of CodeFormer / DAEFR / DR2, which the paper
adopts "for a fair comparison". Details follow CodeFormer's FFHQ blind dataset:
a 41-tap Gaussian kernel, isotropic or anisotropic with probability 1/2
(rotation in [-π, π]), bilinear down- and up-sampling, noise σ on the 0..255
scale, JPEG quality drawn as an integer, and the result rounded to 8 bits.

Kernels and JPEG come from ``basicsr.data.degradations`` (``bivariate_Gaussian``,
``add_jpg_compression``). Every random draw uses the ``numpy.random.Generator``
passed in (never the global NumPy state), so a sample is reproducible from its
seed; this is why the random parameters are drawn here rather than by basicsr's
``random_*`` helpers, which use the global state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..config import ConfigMixin

Range = tuple[float, float]


@dataclass(frozen=True)
class DegradationConfig(ConfigMixin):
    """Parameters of Eq. 16. Ranges are closed intervals ``(low, high)``; ``(v, v)`` fixes a value.

    Attributes:
        blur_sigma: Gaussian blur σ in pixels (paper: [1, 15]).
        downsample: down-sampling factor r (paper: [1, 30]).
        noise: Gaussian noise standard deviation δ on the 0..255 scale (paper: [0, 20]).
        jpeg: JPEG quality q (paper: [30, 90]).
        kernel_size: odd blur kernel size (CodeFormer: 41).
        aniso_prob: probability of an anisotropic kernel (CodeFormer: 0.5; 0 = isotropic only).
        round_output: quantise the result to 8 bits (as a saved LQ image would be).
        blur / noise_on / jpeg_on: switch a step off entirely (ablations, tests).
    """

    blur_sigma: Range = (1.0, 15.0)
    downsample: Range = (1.0, 30.0)
    noise: Range = (0.0, 20.0)
    jpeg: Range = (30.0, 90.0)
    kernel_size: int = 41
    aniso_prob: float = 0.5
    round_output: bool = True
    blur: bool = True
    noise_on: bool = True
    jpeg_on: bool = True

    config_name = "degradation"

    def __post_init__(self):
        for name in ("blur_sigma", "downsample", "noise", "jpeg"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not lo_hi[0] <= lo_hi[1]:
                raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {lo_hi}")
            object.__setattr__(self, name, (float(lo_hi[0]), float(lo_hi[1])))
        if self.blur_sigma[0] <= 0:
            raise ValueError(f"blur_sigma must be > 0, got {self.blur_sigma}")
        if self.downsample[0] < 1:
            raise ValueError(f"downsample factors must be >= 1, got {self.downsample}")
        if self.noise[0] < 0:
            raise ValueError(f"noise sigma must be >= 0, got {self.noise}")
        if not (self.jpeg[0] >= 1 and self.jpeg[1] <= 100):
            raise ValueError(f"jpeg quality must lie in [1, 100], got {self.jpeg}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd int >= 3, got {self.kernel_size}")
        if not 0.0 <= self.aniso_prob <= 1.0:
            raise ValueError(f"aniso_prob must lie in [0, 1], got {self.aniso_prob}")


PAPER = DegradationConfig()


@dataclass(frozen=True)
class DegradationParams:
    """One draw of Eq. 16's random parameters (returned by :func:`sample_params`)."""

    sigma_x: float
    sigma_y: float
    theta: float
    isotropic: bool
    scale: float
    noise: float
    quality: int


def sample_params(rng: np.random.Generator, cfg: DegradationConfig = PAPER) -> DegradationParams:
    """Draw σ, r, δ, q (and the kernel shape) from ``cfg`` with ``rng``."""
    iso = bool(rng.random() >= cfg.aniso_prob)
    sx = float(rng.uniform(*cfg.blur_sigma))
    sy = sx if iso else float(rng.uniform(*cfg.blur_sigma))
    theta = 0.0 if iso else float(rng.uniform(-math.pi, math.pi))
    scale = float(rng.uniform(*cfg.downsample))
    noise = float(rng.uniform(*cfg.noise))
    quality = int(rng.integers(int(round(cfg.jpeg[0])), int(round(cfg.jpeg[1])) + 1))
    return DegradationParams(sx, sy, theta, iso, scale, noise, quality)


def apply_degradation(img: np.ndarray, params: DegradationParams, rng: Optional[np.random.Generator] = None,
                      cfg: DegradationConfig = PAPER) -> np.ndarray:
    """Apply Eq. 16 with fixed ``params`` (``rng`` draws the noise; needed when noise > 0)."""
    import cv2

    from ..basicsr_compat import import_basicsr

    deg = import_basicsr("basicsr.data.degradations")
    img = _check_image(img)
    h, w = img.shape[:2]
    x = np.ascontiguousarray(img[:, :, ::-1])  # basicsr/OpenCV work in BGR (matters for JPEG chroma)
    if cfg.blur:
        kernel = deg.bivariate_Gaussian(cfg.kernel_size, params.sigma_x, params.sigma_y, params.theta,
                                        isotropic=params.isotropic)
        x = cv2.filter2D(x, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    size = (max(1, int(w // params.scale)), max(1, int(h // params.scale)))
    x = cv2.resize(x, size, interpolation=cv2.INTER_LINEAR)
    if cfg.noise_on and params.noise > 0:
        if rng is None:
            raise ValueError("apply_degradation needs an rng to draw noise when params.noise > 0")
        x = x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(params.noise / 255.0)
        x = np.clip(x, 0.0, 1.0)
    if cfg.jpeg_on:
        x = deg.add_jpg_compression(np.float32(x), params.quality)
    x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    if cfg.round_output:
        x = np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0
    return np.ascontiguousarray(x[:, :, ::-1], dtype=np.float32)


def degrade(img: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig = PAPER) -> np.ndarray:
    """Degrade an ``(H, W, 3)`` float32 RGB image in [0, 1] by Eq. 16; same size and convention out.

    All randomness comes from ``rng`` (a ``numpy.random.Generator``), so the
    same generator state gives the same LQ image.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    params = sample_params(rng, cfg)
    return apply_degradation(img, params, rng, cfg)


def _check_image(img: np.ndarray) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"expected an (H, W, 3) numpy array, got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    return np.asarray(img, dtype=np.float32)
