"""Learned quality-level embedding (IQPFR, arXiv 2503.09294, Eq. 7).

"we embed the quality score s into an embedding vector s in R^{hwc} and reshape
it to s in R^{h x w x c}, which matches the dimensionality of Z_l. This
embedding vector s is directly added to Z_l."

One learned vector per level, zero-initialised, so a network conditioned with
it behaves exactly as before until the embedding is trained.

The shape may be left out (``shape=None``): it is then taken from the feature
the first time the conditioned network runs (:func:`auto_shape`), and the
weight is materialised, zero, at that call. Create optimizers, wrap in
``DataParallel`` or compile after that first call (as for torch's lazy modules).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from ..levels import DEFAULT_LEVELS, ScoreLike, as_levels


def token_layout(feature_dim: int, channel_axis: Optional[int]) -> int:
    """The channel axis of a ``feature_dim``-dimensional feature ``(B, ...)``, as a positive index.

    ``channel_axis=None`` means: ``(B, L, C)`` tokens for 3-D features (axis 2),
    axis 1 otherwise (``(B, C)``, ``(B, C, H, W)``, ``(B, C, D, H, W)``).
    """
    if feature_dim < 2:
        raise ValueError(f"a conditioned feature needs a batch axis and a channel axis, got {feature_dim} dims")
    if channel_axis is None:
        return 2 if feature_dim == 3 else 1
    ax = channel_axis % feature_dim
    if ax == 0:
        raise ValueError("channel_axis cannot be the batch axis 0")
    return ax


def auto_shape(feature_shape: Sequence[int], mode: str = "add", channel_axis: Optional[int] = None
               ) -> tuple[int, ...]:
    """The embedding shape chosen for a feature of shape ``(B, ...)`` when none is given.

    ``"add"``: one value per channel, 1 on every other axis, so it fits the
    feature at any spatial size: ``(B, C)`` -> ``(C,)``; ``(B, C, H, W)`` ->
    ``(C, 1, 1)``; tokens ``(B, L, C)`` -> ``(1, C)``. ``"adain"``: ``(2, C)``
    (a scale and a shift per channel).
    """
    dims = len(feature_shape)
    ax = token_layout(dims, channel_axis)
    c = int(feature_shape[ax])
    if mode == "adain":
        return (2, c)
    return tuple(c if i == ax else 1 for i in range(1, dims))


class ScoreEmbedding(nn.Module):
    """A table of ``levels`` learned tensors of ``shape``, zero-initialised.

    Args:
        levels: number of quality levels (10 in the paper: 0..9).
        shape: shape of one embedding, e.g. ``(C, H, W)`` = ``(256, 16, 16)``
            for the paper's ``Z_l``; ``(C, 1, 1)`` for a per-channel vector;
            ``(1, C)`` for tokens ``(B, L, C)``; for ``mode="adain"`` use
            ``(2, C)`` (per-channel scale and shift), see :meth:`for_adain`.
            ``None``: taken from the feature on the first call (:func:`auto_shape`).

    ``forward(score, batch=None)`` accepts an int level, a float score in
    [0, 1] (Python or numpy), or a 0-d/``(B,)`` tensor (integer dtype =
    levels, float = scores) and returns a ``(B, *shape)`` tensor. The parameter
    is stored as ``weight`` of shape ``(levels, prod(shape))``.
    """

    def __init__(self, levels: int = DEFAULT_LEVELS, shape: Optional[Sequence[int]] = (256, 16, 16)):
        super().__init__()
        if int(levels) < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = int(levels)
        if shape is None:
            self.shape: Optional[tuple[int, ...]] = None
            self.weight = UninitializedParameter()
            return
        shape = tuple(int(s) for s in shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"shape must be a non-empty tuple of positive ints, got {shape}")
        self.shape = shape
        self.weight = nn.Parameter(torch.zeros(self.levels, math.prod(shape)))

    @classmethod
    def for_adain(cls, levels: int = DEFAULT_LEVELS, channels: Optional[int] = 256) -> ScoreEmbedding:
        """Embedding for ``mode="adain"``: per level a ``(2, C)`` scale/shift, zero = identity.

        ``channels=None``: C is taken from the feature on the first call.
        """
        return cls(levels, None if channels is None else (2, channels))

    @property
    def is_materialized(self) -> bool:
        return not isinstance(self.weight, UninitializedParameter) and self.shape is not None

    def materialize(self, shape: Sequence[int]) -> None:
        """Fix the shape of an automatic embedding (zero-initialised unless a state dict was loaded)."""
        shape = tuple(int(s) for s in shape)
        if isinstance(self.weight, UninitializedParameter):
            self.weight.materialize((self.levels, math.prod(shape)))
            with torch.no_grad():
                self.weight.zero_()
        elif self.weight.shape[1] != math.prod(shape):
            raise ValueError(f"the loaded embedding has {self.weight.shape[1]} values per level; the feature "
                             f"needs shape {shape} ({math.prod(shape)} values)")
        self.shape = shape

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        key = prefix + "weight"
        if isinstance(self.weight, UninitializedParameter) and key in state_dict:
            with torch.no_grad():
                self.weight.materialize(tuple(state_dict[key].shape))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def levels_of(self, score: ScoreLike, batch: int | None = None) -> torch.Tensor:
        """``(B,)`` long levels for ``score`` on this embedding's device (validated)."""
        return as_levels(score, self.levels, batch=batch, device=self.weight.device)

    def rows(self, levels: torch.Tensor) -> torch.Tensor:
        """``(N, *shape)`` embeddings of the long ``levels`` ``(N,)``."""
        if not self.is_materialized:
            raise RuntimeError("this ScoreEmbedding has an automatic shape and has not seen a feature yet: "
                               "run the conditioned network once first")
        return self.weight[levels].view(levels.shape[0], *self.shape)

    def forward(self, score: ScoreLike, batch: int | None = None) -> torch.Tensor:
        return self.rows(self.levels_of(score, batch))

    def extra_repr(self) -> str:
        return f"levels={self.levels}, shape={'auto' if self.shape is None else self.shape}"
