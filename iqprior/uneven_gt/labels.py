"""Condition levels of the pipeline's training GTs (:mod:`iqprior.uneven_gt`): the library's scorer on their items.

``iqprior.create_scorer`` with no-download members, ``iqprior.Calibration.fit``
over the items (the paper's min-max, §3.1), the ensemble score, then the level:

- ``"floor"``: ``floor(10 s)`` (:func:`iqprior.score_to_level`), the paper's rule;
- ``"rank"``: by the rank of the score, a tenth of the items per level (on a
  small pool the calibrated mean of two members bunches in a few levels and
  leaves the others too few items to train their embedding rows).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from .pool import GRADES, Pool

LEVEL_RULES = ("floor", "rank")


def raw_scores(scorer, pool: Pool, n: Optional[int] = None, chunk: int = 256) -> dict[str, torch.Tensor]:
    """``scorer.raw`` of the pool's items (the first ``n``), converted to float a chunk at a time."""
    n = len(pool.item) if n is None else min(n, len(pool.item))
    parts = [scorer.raw(pool.items(i, min(i + chunk, n))) for i in range(0, n, chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def score_levels(pool: Pool, members: Sequence[str], rule: str = "floor", batch_size: Optional[int] = None):
    """``(level, score, calibration)``: ``(N,)`` long levels 0..9 of the pool's items by ``rule``
    (:data:`LEVEL_RULES`), the ``(N,)`` calibrated ensemble scores in [0, 1] (higher is better) and the
    :class:`iqprior.Calibration` fitted on the items. ``batch_size``: the scorer's (``None``: its default)."""
    import iqprior

    if rule not in LEVEL_RULES:
        raise ValueError(f"rule must be one of {LEVEL_RULES}, got {rule!r}")
    scorer = iqprior.create_scorer(list(members), device="cpu", batch_size=batch_size)
    raw = raw_scores(scorer, pool)
    cal = iqprior.Calibration.fit(raw)
    scorer.calibration = cal
    s = scorer.combine(raw)
    if rule == "floor":
        return iqprior.score_to_level(s), s, cal
    rank = torch.empty(len(s), dtype=torch.long)
    rank[torch.argsort(s, stable=True)] = torch.arange(len(s))
    return (rank * GRADES) // len(s), s, cal
