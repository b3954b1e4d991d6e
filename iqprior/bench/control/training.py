"""Training of the control experiment's twins: one batch plan (data order, augmentation) for both.

The loop and the plan are the shared pipeline's (:mod:`iqprior.uneven_gt.loop`); the control's
configuration: the plan from ``seed + 1``, one augmentation per sample, the mean squared error,
a cosine schedule down to 5 % of the learning rate.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from iqprior.uneven_gt import loop

from .config import ControlConfig
from .data import Pool


def batch_plan(n: int, steps: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(steps, batch)`` and an augmentation code ``(steps, batch)`` in 0..7 (flips x rot90)."""
    return loop.batch_plan(n, steps, batch, np.random.default_rng(seed + 1))


def train(model: nn.Module, pool: Pool, levels: Optional[torch.Tensor], plan, cfg: ControlConfig,
          desc: str, loss: str = "mse", groups: Optional[list[dict]] = None) -> list[float]:
    """Train ``model`` with the mean squared error on ``plan``; a "+" model gets ``score=levels[batch]``.

    ``loss="l1"`` trains with the L1 distance instead (bench real: the paper's fine-tuning loss);
    ``groups``: Adam parameter groups (their own ``lr``), default every parameter at ``cfg.lr``.

    MSE rather than L1: its minimiser is the conditional mean, so with the level of a pristine GT
    the "+" twin's ideal output is ``E[pristine | LQ]``, the best possible PSNR against the
    pristine source, while the baseline's is the mean over all GT grades. Returns the loss curve.
    """
    def mse(lq: torch.Tensor, gt: torch.Tensor, level: Optional[torch.Tensor]) -> torch.Tensor:
        y = model(lq) if level is None else model(lq, score=level)
        return (y - gt).square().mean()

    if loss not in ("mse", "l1"):
        raise ValueError(f"loss must be 'mse' or 'l1', got {loss!r}")

    def l1(lq: torch.Tensor, gt: torch.Tensor, level: Optional[torch.Tensor]) -> torch.Tensor:
        y = model(lq) if level is None else model(lq, score=level)
        return (y - gt).abs().mean()

    model.train()
    losses = loop.train_steps(groups if groups is not None else model.parameters(), mse if loss == "mse" else l1,
                              pool, levels, plan, cfg.lr, eta_min=cfg.lr * 0.05, desc=desc, progress=cfg.progress)
    model.eval()
    return losses
