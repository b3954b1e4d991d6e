"""The quality-optimisation objective (IQPFR Eq. 12): ``L_quality = -IQA(x_res)``."""
from __future__ import annotations

import torch
from torch import nn

from ..scoring.ensemble import EnsembleScorer


class QualityLoss(nn.Module):
    """``-mean`` ensemble score of a restored batch; gradients reach the batch, members stay frozen.

    Args:
        scorer: an :class:`~iqprior.scoring.EnsembleScorer` whose members are all
            differentiable (TOPIQ, MUSIQ, CLIP-IQA, ARNIQA; not PIQE, entropy or
            Q-Align).
        reduction: ``"mean"`` (scalar, Eq. 12) or ``"none"`` (per-sample ``(B,)``).
        clip: clip normalised member scores to [0, 1] before averaging. Off by
            default: clipping zeroes the gradient of images already above the
            calibration range.

    ``restored``: ``(B, 3, H, W)`` RGB, nominally in [0, 1] (not clamped here, so
    that the gradient is not cut at the range edges).
    """

    def __init__(self, scorer: EnsembleScorer, reduction: str = "mean", clip: bool = False):
        super().__init__()
        if not isinstance(scorer, EnsembleScorer):
            raise TypeError(f"QualityLoss needs an EnsembleScorer (iqprior.create_scorer), got {type(scorer).__name__}")
        bad = [s.name for s in scorer.specs if not s.differentiable]
        if bad:
            raise ValueError(f"QualityLoss needs differentiable members; {', '.join(bad)} give no gradient "
                             f"(hand-crafted or too large). Leave them out: create_scorer(members=[...]).")
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.scorer = scorer
        self.reduction = reduction
        self.clip = clip

    def train(self, mode: bool = True) -> QualityLoss:
        super().train(mode)
        self.scorer.train(False)
        return self

    def forward(self, restored: torch.Tensor) -> torch.Tensor:
        score = self.scorer(restored, grad=True, clip=self.clip)
        loss = -score
        return loss.mean() if self.reduction == "mean" else loss
