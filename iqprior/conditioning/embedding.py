"""Learned quality-level embedding (IQPFR, arXiv 2503.09294, Eq. 7).

"we embed the quality score s into an embedding vector s in R^{hwc} and reshape
it to s in R^{h x w x c}, which matches the dimensionality of Z_l. This
embedding vector s is directly added to Z_l."

One learned vector per level, zero-initialised, so a network conditioned with
it behaves exactly as before until the embedding is trained.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..levels import DEFAULT_LEVELS, ScoreLike, as_levels


class ScoreEmbedding(nn.Module):
    """A table of ``levels`` learned tensors of ``shape``, zero-initialised.

    Args:
        levels: number of quality levels (10 in the paper: 0..9).
        shape: shape of one embedding, e.g. ``(C, H, W)`` = ``(256, 16, 16)``
            for the paper's ``Z_l``; for ``mode="adain"`` use ``(2, C)``
            (per-channel scale and shift), see :meth:`for_adain`.

    ``forward(score, batch=None)`` accepts an int level, a float score in
    [0, 1], or a 0-d/``(B,)`` tensor (integer dtype = levels, float = scores)
    and returns a ``(B, *shape)`` tensor. The parameter is stored as
    ``weight`` of shape ``(levels, prod(shape))``.
    """

    def __init__(self, levels: int = DEFAULT_LEVELS, shape: Sequence[int] = (256, 16, 16)):
        super().__init__()
        if int(levels) < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        shape = tuple(int(s) for s in shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"shape must be a non-empty tuple of positive ints, got {shape}")
        self.levels = int(levels)
        self.shape = shape
        self.weight = nn.Parameter(torch.zeros(self.levels, math.prod(shape)))

    @classmethod
    def for_adain(cls, levels: int = DEFAULT_LEVELS, channels: int = 256) -> ScoreEmbedding:
        """Embedding for ``mode="adain"``: per level a ``(2, C)`` scale/shift, zero = identity."""
        return cls(levels, (2, channels))

    def levels_of(self, score: ScoreLike, batch: int | None = None) -> torch.Tensor:
        """``(B,)`` long levels for ``score`` on this embedding's device (validated)."""
        return as_levels(score, self.levels, batch=batch, device=self.weight.device)

    def forward(self, score: ScoreLike, batch: int | None = None) -> torch.Tensor:
        lvl = self.levels_of(score, batch)
        return self.weight[lvl].view(lvl.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, shape={self.shape}"
