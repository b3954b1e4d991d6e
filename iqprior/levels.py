"""Quality score -> condition level (paper App. 6.1.2).

"During training, we multiply the score by 10 and round it down, ensuring the
condition score falls within an integer range of [0, 9]."
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch

ScoreLike = Union[int, float, torch.Tensor, np.integer, np.floating, np.ndarray]

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
    s = torch.as_tensor(score)
    if not s.is_floating_point():
        s = s.to(torch.float64)
    if torch.isnan(s).any():
        raise ValueError("score_to_level got NaN; a NaN score has no quality level")
    lvl = torch.floor(s * levels).to(torch.long)  # in the score's own dtype: float32 0.9 -> 9 (see as_levels)
    return lvl.clamp_(0, levels - 1)


def level_to_score(level: ScoreLike, levels: int = DEFAULT_LEVELS) -> torch.Tensor:
    """Centre of the score bin of ``level`` (``(level + 0.5) / levels``), float32."""
    lvl = torch.as_tensor(level)
    return (lvl.to(torch.float32) + 0.5) / levels


def as_levels(score: ScoreLike, levels: int = DEFAULT_LEVELS, batch: int | None = None,
              device: torch.device | None = None) -> torch.Tensor:
    """Normalise a user-supplied condition to a ``(B,)`` long tensor of levels.

    Accepts a Python or numpy integer (a level), a Python or numpy float in
    [0, 1] (a score, bucketed with :func:`score_to_level`), or a 0-d / ``(B,)``
    tensor or numpy array: integer dtypes are levels, floating dtypes are scores.
    Raises ``ValueError`` with the offending value when a level is outside
    ``0 .. levels-1`` or a score outside [0, 1], and ``TypeError`` for anything else.

    Python and numpy numbers are checked in Python, so ``torch.compile`` sees a
    constant and no graph break. While ``torch.compile`` or ``torch.export``
    traces, the values of a *tensor* score are not checked (that would need a
    data-dependent branch): an integer level outside the table then fails at
    indexing, and a float score is clipped to 0..1.
    """
    if isinstance(score, bool) or (isinstance(score, np.generic) and score.dtype == np.bool_):
        raise TypeError("score must be an int level, a float score in [0, 1] or a tensor, got bool")
    if isinstance(score, np.ndarray):
        if score.dtype == np.bool_ or not (np.issubdtype(score.dtype, np.integer)
                                          or np.issubdtype(score.dtype, np.floating)):
            raise TypeError(f"a numpy score must hold integer levels or float scores, got dtype {score.dtype}")
        score = torch.from_numpy(np.ascontiguousarray(score))
    elif isinstance(score, np.integer):
        score = int(score)
    own_level = None  # a numpy float's level, floored in its own precision (np.float32(0.9) -> 9, not 8)
    if isinstance(score, np.floating):
        if np.isfinite(score):
            own_level = int(np.floor(score * score.dtype.type(levels)))
        score = float(score)
    if isinstance(score, int):
        if not 0 <= score < levels:
            raise ValueError(f"level {score} is outside 0..{levels - 1}; pass an int level or a float score in [0, 1]")
        t = torch.full((batch if batch is not None else 1,), score, dtype=torch.long)
        return t.to(device) if device is not None else t
    if isinstance(score, float):
        if score != score:
            raise ValueError("score is NaN; a NaN score has no quality level")
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score {score:g} is outside [0, 1]; pass a float score in [0, 1] or an int level")
        level = min(int(math.floor(score * levels)) if own_level is None else own_level, levels - 1)
        t = torch.full((batch if batch is not None else 1,), level, dtype=torch.long)
        return t.to(device) if device is not None else t
    if not isinstance(score, torch.Tensor):
        raise TypeError(
            f"score must be an int level, a float score in [0, 1] or a tensor, got {type(score).__name__}")
    t = score.detach()
    is_level = not (t.is_floating_point() or t.is_complex())
    if t.dim() > 1:
        raise ValueError(f"score tensor must be 0-d or (B,), got shape {tuple(t.shape)}")
    tracing = torch.compiler.is_compiling()
    if is_level:
        t = t.to(torch.long)
        if not tracing and t.numel() and (t.min() < 0 or t.max() >= levels):
            bad = t[(t < 0) | (t >= levels)].flatten()[0].item()
            raise ValueError(f"level {bad} is outside 0..{levels - 1}; pass an int level or a float score in [0, 1]")
    else:
        if not tracing:
            if torch.isnan(t).any():
                raise ValueError("score is NaN; a NaN score has no quality level")
            if t.numel() and (t.min() < 0 or t.max() > 1):
                bad = t[(t < 0) | (t > 1)].flatten()[0].item()
                raise ValueError(f"score {bad:g} is outside [0, 1]; pass a float score in [0, 1] or an int level")
        # floor(levels * s) in the score's own dtype, as the authors' code ((score * 10).floor() on the
        # float32 tensor): float32 0.9 times 10 rounds to 9.0, while 0.9f up-cast to float64 gives 8.99999976
        t = torch.floor(t * levels).to(torch.long).clamp(0, levels - 1)
    if t.dim() == 0:
        t = t.expand(batch if batch is not None else 1)
    elif batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"got {t.shape[0]} scores for a batch of {batch}")
    elif batch is not None and t.shape[0] == 1 and batch != 1:
        t = t.expand(batch)
    return t.to(device) if device is not None else t


def parse_levels(text: str, levels: int = DEFAULT_LEVELS, flag: str = "levels") -> list[int]:
    """Level ranges as typed on a command line -> sorted unique levels in ``0 .. levels-1``.

    Accepts ``"0..9"``, ``"0-9"``, ``"2,5,9"`` and mixtures such as ``"0-3,7,8..9"``.
    Raises ``ValueError`` naming ``flag`` for anything else or for a level out of range.
    """
    import re

    out: set[int] = set()
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    for part in parts:
        m = re.fullmatch(r"(\d+)\s*(?:\.\.|-)\s*(\d+)|(\d+)", part)
        if m is None:
            raise ValueError(f"{flag} expects levels like 0..9, 0-9 or 2,5,9; got {text!r}")
        if m.group(3) is not None:
            out.add(int(m.group(3)))
        else:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ValueError(f"{flag}: range {part!r} runs backwards; write {hi}..{lo}")
            out.update(range(lo, hi + 1))
    bad = sorted(v for v in out if not 0 <= v < levels)
    if not out or bad:
        raise ValueError(f"{flag} levels must lie in 0..{levels - 1}, got {text!r}")
    return sorted(out)


def format_levels(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0..2, 5"`` (for figure titles)."""
    out, run = [], []
    for v in sorted(set(values)):
        if run and v != run[-1] + 1:
            out.append(run)
            run = []
        run.append(v)
    if run:
        out.append(run)
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in out)


def parse_condition(text: str, levels: int = DEFAULT_LEVELS, flag: str = "--score") -> int | float:
    """``"9"`` -> level 9 (int); ``"0.93"`` -> score 0.93 (float); validated (``ValueError`` naming ``flag``)."""
    try:
        value: int | float = int(str(text).strip())
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{flag} must be a level 0..{levels - 1} or a score in [0, 1], got {text!r}") from None
    if isinstance(value, int) and not 0 <= value < levels:
        raise ValueError(f"{flag} level {value} is outside 0..{levels - 1} (or give a float score in [0, 1])")
    if isinstance(value, float) and not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{flag} score {value:g} is outside [0, 1] (or give an int level 0..{levels - 1})")
    return value
