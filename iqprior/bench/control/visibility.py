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

Two more readers, each scored the same way (fit on one half, Spearman's rho on the other): a small
convolutional network (:func:`cnn_probe`, three strided convolutions and a linear read-out, a few hundred
Adam steps, seeded) and the library's scorer — the no-reference members that label the GTs — run on the
LQ inputs (``lq_scorer``, no fitting: rho between quality and the mean of the members' z-scored raw
scores, each oriented so that higher is better).
"""
from __future__ import annotations

import numpy as np
import torch

from iqprior.uneven_gt import spearman

from .data import GRADES

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


def cnn_probe(images: torch.Tensor, grade: torch.Tensor, steps: int = 500, batch: int = 32, seed: int = 0) -> float:
    """Spearman's rho between the grade and a small CNN's prediction on the held-out half (fit on the first)."""
    from torch import nn

    n = len(grade) // 2
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                            nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    y = (grade.float() - (GRADES - 1) / 2) / 3       # about zero mean, unit variance: Adam's steps fit its scale
    for _ in range(steps):
        b = torch.randint(0, n, (min(batch, n),), generator=gen)
        loss = (net(images[b]).squeeze(1) - y[b]).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = torch.cat([net(images[i:i + 256]).squeeze(1) for i in range(n, len(y), 256)])
    return round(spearman(y[n:].tolist(), pred.tolist()), 4)


def scorer_reading(images: torch.Tensor, grade: torch.Tensor, members: tuple[str, ...]) -> float:
    """Spearman's rho between quality (``-grade``) and the members' mean oriented z-scored raw score."""
    import iqprior

    scorer = iqprior.create_scorer(list(members), device="cpu", batch_size=64)
    raw = scorer.raw(images)     # chunked by the scorer's batch size
    total = torch.zeros(len(images), dtype=torch.float64)
    for spec in scorer.specs:
        v = raw[spec.name].double()
        total += (-1.0 if spec.lower_better else 1.0) * (v - v.mean()) / (v.std() + 1e-12)
    return round(spearman((-grade).tolist(), total.tolist()), 4)


def grade_visibility(pool, members: tuple[str, ...] = (), cnn: bool = True) -> dict[str, float]:
    """How well the grade can be read off the GTs and off the LQ inputs: ``gt``/``lq`` (linear probe),
    ``gt_cnn``/``lq_cnn`` (:func:`cnn_probe`) and ``lq_scorer`` (the labelling ``members`` on the LQ)."""
    out = {"gt": probe(pool.gt, pool.grade), "lq": probe(pool.lq, pool.grade)}
    if cnn:
        out["gt_cnn"] = cnn_probe(pool.gt, pool.grade)
        out["lq_cnn"] = cnn_probe(pool.lq, pool.grade)
    if members:
        out["lq_scorer"] = scorer_reading(pool.lq, pool.grade, tuple(members))
    return out
