"""The training loop of the pipeline (:mod:`iqprior.uneven_gt`): one seeded batch plan, Adam, a cosine schedule.

The plan (data order and one of the 8 flips/rotations per sample) is drawn once,
so that twins trained on it (a baseline and its "+" model) see the same batches.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np
import torch

from .pool import Pool

#: ``loss_fn(lq, gt, levels)`` -> scalar loss (``levels`` ``None`` for an unconditioned model)
LossFn = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def batch_plan(n: int, steps: int, batch: int, rng: np.random.Generator,
               per_step: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(steps, batch)`` (successive permutations of ``0..n-1``) and augmentation codes ``(steps, batch)``
    in 0..7 (bit 0: flip left-right first; bits 1-2: quarter turns). ``per_step``: one code drawn per step for the
    whole batch (bit 2: flip; bits 0-1: quarter turns), the same augmentations recoded."""
    idx = np.concatenate([rng.permutation(n) for _ in range(steps * batch // n + 1)])[:steps * batch]
    if not per_step:
        return idx.reshape(steps, batch), rng.integers(0, 8, size=(steps, batch))
    codes = rng.integers(0, 8, size=steps)
    codes = ((codes & 3) << 1) | ((codes >> 2) & 1)
    return idx.reshape(steps, batch), np.repeat(codes[:, None], batch, axis=1)


def augment(x: torch.Tensor, codes: np.ndarray) -> torch.Tensor:
    """Each image of the square batch ``x`` ``(B, C, S, S)`` by its code (:func:`batch_plan`)."""
    out = []
    for img, c in zip(x, codes):
        if c & 1:
            img = img.flip(-1)
        out.append(torch.rot90(img, int(c >> 1), dims=(-2, -1)))
    return torch.stack(out)


def train_steps(params: Iterable[torch.nn.Parameter], loss_fn: LossFn, pool: Pool, levels: Optional[torch.Tensor],
                plan: tuple[np.ndarray, np.ndarray], lr: float, eta_min: float = 0.0, desc: str = "training",
                progress: bool = True) -> list[float]:
    """Adam at ``lr`` with a cosine schedule down to ``eta_min`` over the plan's steps; each step the loss of the
    planned batch (LQ, GT and, given ``levels``, their levels), augmented. Returns the loss curve."""
    from tqdm.auto import tqdm

    idx, aug = plan
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(idx), eta_min=eta_min)
    losses = []
    bar = tqdm(range(len(idx)), desc=desc, disable=not progress, unit="step")
    for step in bar:
        b = torch.from_numpy(idx[step])
        lq, gt = augment(pool.lq[b], aug[step]), augment(pool.gt[b], aug[step])
        loss = loss_fn(lq, gt, None if levels is None else levels[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress and (step + 1) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    return losses
