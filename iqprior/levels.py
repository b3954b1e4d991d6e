"""Quality score -> condition level (paper App. 6.1.2).

"During training, we multiply the score by 10 and round it down, ensuring the
condition score falls within an integer range of [0, 9]."
"""
from __future__ import annotations

from typing import Union

import torch

ScoreLike = Union[int, float, torch.Tensor]

DEFAULT_LEVELS = 10


def score_to_level(score: ScoreLike, levels: int = DEFAULT_LEVELS) -> torch.Tensor:
    """Map ensemble scores in [0, 1] to integer levels ``floor(levels * s)``.

    Args:
        score: a float, or a tensor of floats, in [0, 1] (higher is better).
            Values slightly outside [0, 1] are clipped; NaN is rejected.
        levels: number of levels (10 in the paper, giving 0..9).

    Returns:
        ``torch.long`` tensor with the shape of ``score`` (0-d for a scalar),
        values in ``0 .. levels - 1``; a score of exactly 1.0 maps to the top level.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    s = torch.as_tensor(score, dtype=torch.float64)
    if torch.isnan(s).any():
        raise ValueError("score_to_level got NaN; a NaN score has no quality level")
    lvl = torch.floor(s * levels).to(torch.long)
    return lvl.clamp_(0, levels - 1)


def level_to_score(level: ScoreLike, levels: int = DEFAULT_LEVELS) -> torch.Tensor:
    """Centre of the score bin of ``level`` (``(level + 0.5) / levels``), float32."""
    lvl = torch.as_tensor(level)
    return (lvl.to(torch.float32) + 0.5) / levels


def as_levels(score: ScoreLike, levels: int = DEFAULT_LEVELS, batch: int | None = None,
              device: torch.device | None = None) -> torch.Tensor:
    """Normalise a user-supplied condition to a ``(B,)`` long tensor of levels.

    Accepts a Python ``int`` (a level), a Python ``float`` in [0, 1] (a score,
    bucketed with :func:`score_to_level`), or a 0-d / ``(B,)`` tensor: integer
    dtypes are levels, floating dtypes are scores. Raises ``ValueError`` with
    the offending value when a level is outside ``0 .. levels-1`` or a score
    outside [0, 1], and ``TypeError`` for anything else.
    """
    if isinstance(score, bool):
        raise TypeError("score must be an int level, a float score in [0, 1] or a tensor, got bool")
    if isinstance(score, int):
        t = torch.tensor(score, dtype=torch.long)
        is_level = True
    elif isinstance(score, float):
        t = torch.tensor(score, dtype=torch.float64)
        is_level = False
    elif isinstance(score, torch.Tensor):
        t = score.detach()
        is_level = not (t.is_floating_point() or t.is_complex())
        if t.dim() > 1:
            raise ValueError(f"score tensor must be 0-d or (B,), got shape {tuple(t.shape)}")
    else:
        raise TypeError(
            f"score must be an int level, a float score in [0, 1] or a tensor, got {type(score).__name__}")
    if is_level:
        t = t.to(torch.long)
        if t.numel() and (t.min() < 0 or t.max() >= levels):
            bad = t[(t < 0) | (t >= levels)].flatten()[0].item()
            raise ValueError(f"level {bad} is outside 0..{levels - 1}; pass an int level or a float score in [0, 1]")
    else:
        if torch.isnan(t).any():
            raise ValueError("score is NaN; a NaN score has no quality level")
        if t.numel() and (t.min() < 0 or t.max() > 1):
            bad = t[(t < 0) | (t > 1)].flatten()[0].item()
            raise ValueError(f"score {bad:g} is outside [0, 1]; pass a float score in [0, 1] or an int level")
        t = score_to_level(t, levels)
    if t.dim() == 0:
        t = t.expand(batch if batch is not None else 1)
    elif batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"got {t.shape[0]} scores for a batch of {batch}")
    elif batch is not None and t.shape[0] == 1 and batch != 1:
        t = t.expand(batch)
    return t.to(device) if device is not None else t
