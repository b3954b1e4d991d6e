"""Training of the control experiment's twins: one batch plan (data order, augmentation) for both."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from .config import ControlConfig
from .data import Pool


def batch_plan(n: int, steps: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(steps, batch)`` and an augmentation code ``(steps, batch)`` in 0..7 (flips x rot90)."""
    rng = np.random.default_rng(seed + 1)
    idx = np.concatenate([rng.permutation(n) for _ in range(steps * batch // n + 1)])[:steps * batch]
    return idx.reshape(steps, batch), rng.integers(0, 8, size=(steps, batch))


def _augment(x: torch.Tensor, codes: np.ndarray) -> torch.Tensor:
    out = []
    for img, c in zip(x, codes):
        if c & 1:
            img = img.flip(-1)
        out.append(torch.rot90(img, int(c >> 1), dims=(-2, -1)))
    return torch.stack(out)


def train(model: nn.Module, pool: Pool, levels: Optional[torch.Tensor], plan, cfg: ControlConfig,
          desc: str, loss: str = "mse", groups: Optional[list[dict]] = None) -> list[float]:
    """Train ``model`` with the mean squared error on ``plan``; a "+" model gets ``score=levels[batch]``.

    ``loss="l1"`` trains with the L1 distance instead (bench real: the paper's fine-tuning loss);
    ``groups``: Adam parameter groups (their own ``lr``), default every parameter at ``cfg.lr``.

    MSE rather than L1: its minimiser is the conditional mean, so with the level of a pristine GT
    the "+" twin's ideal output is ``E[pristine | LQ]``, the best possible PSNR against the
    pristine source, while the baseline's is the mean over all GT grades. Returns the loss curve.
    """
    from tqdm.auto import tqdm

    if loss not in ("mse", "l1"):
        raise ValueError(f"loss must be 'mse' or 'l1', got {loss!r}")
    idx, aug = plan
    opt = torch.optim.Adam(groups if groups is not None else model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(idx), eta_min=cfg.lr * 0.05)
    model.train()
    losses = []
    for step in tqdm(range(len(idx)), desc=desc, disable=not cfg.progress, unit="step"):
        b = torch.from_numpy(idx[step])
        lq, gt = _augment(pool.lq[b], aug[step]), _augment(pool.gt[b], aug[step])
        y = model(lq) if levels is None else model(lq, score=levels[b])
        err = (y - gt).square().mean() if loss == "mse" else (y - gt).abs().mean()
        opt.zero_grad(set_to_none=True)
        err.backward()
        opt.step()
        sched.step()
        losses.append(err.item())
    model.eval()
    return losses
