"""Dataset min-max calibration of each member (paper App. 6.1.2).

``s_i = (S_i - S_min) / (S_max - S_min + 1e-5)``, with ``S_min``/``S_max`` taken
over the training set; a member where lower is better is flipped,
``s_i = (S_max - S_i) / (S_max - S_min + 1e-5)``. On the fitting set every
``s_i`` lies in ``[0, 1)``; images outside it may fall outside and are clipped
by the ensemble.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch

from ..io import atomic_write_text

EPS = 1e-5


@dataclass(frozen=True)
class MemberRange:
    min: float
    max: float
    lower_better: bool = False
    count: int = 0


@dataclass(frozen=True)
class Calibration:
    """Per-member ``min``/``max`` of raw scores over a dataset."""

    members: Mapping[str, MemberRange] = field(default_factory=dict)
    eps: float = EPS

    @classmethod
    def fit(cls, raw_scores_by_member: Mapping[str, Sequence[float] | torch.Tensor],
            lower_better: Optional[Mapping[str, bool]] = None, eps: float = EPS) -> Calibration:
        """Fit min/max per member; NaN and +-Inf values are ignored. Direction defaults to the spec table's."""
        from .specs import SPECS

        ranges = {}
        for name, values in raw_scores_by_member.items():
            v = torch.as_tensor(values, dtype=torch.float64).flatten()
            v = v[torch.isfinite(v)]  # an Inf would make every other score 0 (or NaN) later
            if v.numel() == 0:
                raise ValueError(f"cannot calibrate member {name!r}: no finite scores")
            lb = (lower_better or {}).get(name, SPECS[name].lower_better if name in SPECS else False)
            ranges[name] = MemberRange(float(v.min()), float(v.max()), bool(lb), int(v.numel()))
        return cls(ranges, eps)

    def normalise(self, name: str, raw: torch.Tensor | float) -> torch.Tensor:
        """Normalised score of member ``name`` (higher is better; not clipped)."""
        if name not in self.members:
            raise KeyError(f"calibration has no member {name!r} (has: {', '.join(self.members)})")
        r = self.members[name]
        raw = torch.as_tensor(raw)
        denom = r.max - r.min + self.eps
        return (r.max - raw) / denom if r.lower_better else (raw - r.min) / denom

    def __contains__(self, name: str) -> bool:
        return name in self.members

    def to_dict(self) -> dict:
        return {"version": 1, "eps": self.eps,
                "members": {n: {"min": r.min, "max": r.max, "lower_better": r.lower_better, "count": r.count}
                            for n, r in self.members.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> Calibration:
        """Check and build; any other shape is one ``ValueError`` line."""
        def number(v: object, what: str) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise ValueError(f"{what} must be a finite number, got {v!r:.40}")
            return float(v)

        if not isinstance(data, Mapping) or not isinstance(data.get("members"), Mapping):
            raise ValueError("not a calibration file: no 'members' mapping")
        members = {}
        for n, m in data["members"].items():
            if not isinstance(m, Mapping):
                raise ValueError(f"not a calibration file: member {n!r:.40} is not a mapping")
            lb, count = m.get("lower_better", False), m.get("count", 0)
            if not isinstance(lb, bool) or isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"not a calibration file: member {n!r:.40} has lower_better={lb!r:.20}, "
                                 f"count={count!r:.20}")
            members[str(n)] = MemberRange(number(m.get("min"), f"min of {n!r:.40}"),
                                          number(m.get("max"), f"max of {n!r:.40}"), lb, count)
        eps = number(data.get("eps", EPS), "eps")
        if eps <= 0:
            raise ValueError(f"calibration eps must be > 0, got {eps}")
        for n, m in members.items():
            if m.max < m.min:
                raise ValueError(f"calibration of {n!r} has an invalid range [{m.min}, {m.max}]")
        return cls(members, eps)

    def save(self, path: str | os.PathLike, extra: Optional[Mapping] = None) -> Path:
        """Write the JSON file; ``extra`` keys (e.g. a random-weights note) are stored beside, ignored on load."""
        return atomic_write_text(path, json.dumps({**self.to_dict(), **dict(extra or {})}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, nested too deep
            raise ValueError(f"{path} is not valid JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                             ) from None
        return cls.from_dict(data)
