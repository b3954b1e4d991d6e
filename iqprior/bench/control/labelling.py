"""Condition levels of the training GTs: the library's own scorer on their items, or the oracle grade."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from .config import LABEL_MEMBERS, TRACKED_MEMBERS, TRACKING_SAMPLE
from .data import GRADES, Pool
from .report import spearman


@dataclass
class Labels:
    level: torch.Tensor                          # (N,) long 0..9
    mode: str
    members: tuple[str, ...] = ()
    calibration: dict = field(default_factory=dict)
    rho_grade: float = float("nan")              # Spearman(grade, ensemble score); 1 for the oracle
    tracking: dict = field(default_factory=dict)  # member -> Spearman(-grade, normalised score)
    rule: str = "floor"                          # "floor": floor(10 s), the paper's; "rank": a tenth per level
    floor_counts: list = field(default_factory=list)  # items per level under floor(10 s), whatever the rule


def _raw_scores(scorer, pool: Pool, n: Optional[int] = None, chunk: int = 256) -> dict[str, torch.Tensor]:
    """``scorer.raw`` of the pool's items (the first ``n``), converted to float a chunk at a time."""
    n = len(pool.item) if n is None else min(n, len(pool.item))
    parts = [scorer.raw(pool.items(i, min(i + chunk, n))) for i in range(0, n, chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def member_tracking(pool: Pool, members=TRACKED_MEMBERS) -> dict[str, float]:
    """Spearman's rho between quality (``-grade``) and each member's score of the items, + = tracks."""
    import iqprior

    grade = pool.grade[:TRACKING_SAMPLE]
    out = {}
    for name in members:
        scorer = iqprior.create_scorer([name], device="cpu", batch_size=64)
        raw = _raw_scores(scorer, pool, TRACKING_SAMPLE)[name]
        flip = -1.0 if scorer.specs[0].lower_better else 1.0
        out[name] = round(spearman((-grade).tolist(), (flip * raw).tolist()), 4)
    return out


#: how a calibrated ensemble score becomes a level
LEVEL_RULES = ("floor", "rank")


def rank_levels(s: torch.Tensor, levels: int = GRADES) -> torch.Tensor:
    """Levels by rank of ``s``: the lowest tenth of the scores level 0, ..., the highest tenth level 9 (ties
    broken by order). Every level gets items, where ``floor(10 s)`` leaves levels with few or none whose
    embedding rows then never train (the demo recipe and bench real saw it; docs/experiments/real.md)."""
    rank = torch.empty(len(s), dtype=torch.long)
    rank[torch.argsort(s, stable=True)] = torch.arange(len(s))
    return (rank * levels) // len(s)


def make_labels(pool: Pool, mode: str, members=LABEL_MEMBERS, tracking: bool = True, rule: str = "floor") -> Labels:
    """Condition levels of the training GTs: the library's scorer on their items (calibrated on them) or the
    oracle. ``rule``: ``"floor"`` (the paper's ``floor(10 s)``) or ``"rank"`` (:func:`rank_levels`)."""
    if rule not in LEVEL_RULES:
        raise ValueError(f"rule must be one of {LEVEL_RULES}, got {rule!r}")
    import iqprior

    track = member_tracking(pool) if tracking else {}
    if mode == "oracle":
        return Labels(GRADES - 1 - pool.grade, mode, (), {}, 1.0, track)
    scorer = iqprior.create_scorer(list(members), device="cpu", batch_size=64)
    raw = _raw_scores(scorer, pool)
    cal = iqprior.Calibration.fit(raw)
    scorer.calibration = cal
    s = scorer.combine(raw)
    floor = iqprior.score_to_level(s)
    level = floor if rule == "floor" else rank_levels(s)
    cal_dict = {n: {"min": r.min, "max": r.max, "lower_better": r.lower_better} for n, r in cal.members.items()}
    return Labels(level, mode, tuple(members), cal_dict, round(spearman((-pool.grade).tolist(), s.tolist()), 4),
                  track, rule, torch.bincount(floor, minlength=GRADES).tolist())
