"""How well an image reveals its GT's imperfection grade: a linear probe on spectral and gradient features.

The paper's premise needs LQ inputs that do not tell which quality their GT had (FFHQ's subtle
imperfections vanish under Eq. 16's heavy degradation). This measures it: a ridge regression from
cheap blur-sensitive features of an image (its power in ten radial frequency bands relative to the
whole, the mean gradient magnitude over the standard deviation, the mean Laplacian magnitude over
the mean gradient) to the grade, fitted on one half of the training pairs and scored on the other
half by Spearman's rho between predicted and true grade. Run on the GTs it gives the ceiling (how
visible the grade is at all); on the LQ inputs, how much of it survives the degradation. A rho
near 0 on the LQ means a restorer cannot read the grade off its input either (the probe is linear,
so a network could do better: the training's ``premise`` gain is the complementary measure).
"""
from __future__ import annotations

import numpy as np
import torch

from .report import spearman

BANDS = 10


def features(x: torch.Tensor) -> np.ndarray:
    """``(N, BANDS + 2)`` features of ``(N, 3, H, W)`` images in [0, 1] (their luminance)."""
    g = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).double()
    g = g - g.mean(dim=(-2, -1), keepdim=True)
    h, w = g.shape[-2:]
    power = torch.fft.rfft2(g).abs().square()
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    radius = torch.sqrt(fy ** 2 + fx ** 2).expand(h, w // 2 + 1)
    edges = torch.linspace(0.0, 0.5, BANDS + 1, dtype=torch.float64)
    total = power.sum(dim=(-2, -1)) + 1e-12
    bands = [(power * ((radius >= lo) & (radius < hi))).sum(dim=(-2, -1)) / total
             for lo, hi in zip(edges[:-1], edges[1:])]
    gy, gx = g[:, 1:, :-1] - g[:, :-1, :-1], g[:, :-1, 1:] - g[:, :-1, :-1]
    grad = torch.sqrt(gx ** 2 + gy ** 2).mean(dim=(-2, -1))
    lap = (g[:, 1:-1, 1:-1] * 4 - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]).abs()
    std = g.std(dim=(-2, -1)) + 1e-6
    feats = [torch.log(b + 1e-10) for b in bands]
    feats += [torch.log(grad / std + 1e-6), torch.log(lap.mean(dim=(-2, -1)) / (grad + 1e-6) + 1e-6)]
    return torch.stack(feats, dim=1).numpy()


def probe(images: torch.Tensor, grade: torch.Tensor, ridge: float = 1e-2) -> float:
    """Spearman's rho between the grade and its ridge-regression prediction on the held-out half."""
    f = features(images)
    y = grade.double().numpy()
    n = len(y) // 2
    mu, sd = f[:n].mean(0), f[:n].std(0) + 1e-8
    a = np.c_[(f - mu) / sd, np.ones(len(f))]
    w = np.linalg.solve(a[:n].T @ a[:n] + ridge * n * np.eye(a.shape[1]), a[:n].T @ y[:n])
    return round(spearman(y[n:], a[n:] @ w), 4)


def grade_visibility(pool) -> dict[str, float]:
    """``{"gt": rho, "lq": rho}``: how well the probe reads the grade off the GTs and off the LQ inputs."""
    return {"gt": probe(pool.gt, pool.grade), "lq": probe(pool.lq, pool.grade)}
