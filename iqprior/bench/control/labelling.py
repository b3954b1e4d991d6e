"""Condition levels of the training GTs: the library's own scorer on their items, or the oracle grade."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from iqprior.uneven_gt import raw_scores, score_levels, spearman

from .config import LABEL_MEMBERS, TRACKED_MEMBERS, TRACKING_SAMPLE
from .data import GRADES, Pool


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


def member_tracking(pool: Pool, members=TRACKED_MEMBERS) -> dict[str, float]:
    """Spearman's rho between quality (``-grade``) and each member's score of the items, + = tracks."""
    import iqprior

    grade = pool.grade[:TRACKING_SAMPLE]
    out = {}
    for name in members:
        scorer = iqprior.create_scorer([name], device="cpu", batch_size=64)
        raw = raw_scores(scorer, pool, TRACKING_SAMPLE)[name]
        flip = -1.0 if scorer.specs[0].lower_better else 1.0
        out[name] = round(spearman((-grade).tolist(), (flip * raw).tolist()), 4)
    return out


def make_labels(pool: Pool, mode: str, members=LABEL_MEMBERS, tracking: bool = True, rule: str = "floor") -> Labels:
    """Condition levels of the training GTs: the library's scorer on their items (calibrated on them) or the
    oracle. ``rule``: ``"floor"`` (the paper's ``floor(10 s)``) or ``"rank"`` (a tenth of the items per level;
    :func:`iqprior.uneven_gt.score_levels`)."""
    import iqprior

    track = member_tracking(pool) if tracking else {}
    if mode == "oracle":
        return Labels(GRADES - 1 - pool.grade, mode, (), {}, 1.0, track)
    level, s, cal = score_levels(pool, members, rule, batch_size=64)
    floor = level if rule == "floor" else iqprior.score_to_level(s)
    cal_dict = {n: {"min": r.min, "max": r.max, "lower_better": r.lower_better} for n, r in cal.members.items()}
    return Labels(level, mode, tuple(members), cal_dict, round(spearman((-pool.grade).tolist(), s.tolist()), 4),
                  track, rule, torch.bincount(floor, minlength=GRADES).tolist())
