"""The evaluation metrics of the IQPFR paper (arXiv 2503.09294), as the columns of the benchmark tables.

Tables 1-2 (faces) report eight no-reference metrics: TOPIQ-GFIQA, MUSIQ-GFIQA,
MUSIQ-KonIQ, MUSIQ-AVA, ARNIQA, MDFS (lower is better), Q-Align and CLIP-IQA.
Table 6 (underwater) reports PSNR, SSIM, URanker, UCIQE and UIQM.

A column holds display fields only (title, decimals) and names its metric in
the one metric table, ``iqprior.scoring.specs.SPECS``, which holds range,
direction, full/no-reference and weights. No-reference metrics are built as
the scorer's members (:mod:`iqprior.scoring.members`), full-reference ones by
:mod:`iqprior.scoring.fullref`, all with ``torch.load(weights_only=True)``.
A metric that cannot be computed (pyiqa lacks it, or its weights are not on
disk) is reported as unavailable with the reason; it never crashes a run.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from iqprior.scoring.specs import SPECS, MetricSpec


@dataclass(frozen=True)
class BenchMetric:
    """One column of a benchmark table.

    Attributes:
        key: the name used on the command line (``--metrics``).
        label: the column title, as the paper writes it.
        member: the metric's name in ``iqprior.scoring.specs.SPECS`` (range,
            direction and full-reference come from there).
        decimals: digits shown in the table (as in the paper).
        missing: why a paper column has no metric at all (then ``member`` is ``None``).
        missing_lower_better: the paper's arrow (↓) of such a column.
    """

    key: str
    label: str
    member: Optional[str] = None
    decimals: int = 3
    missing: str = ""
    missing_lower_better: bool = False

    def __post_init__(self) -> None:
        if (self.member is None) == (not self.missing):
            raise ValueError(f"column {self.key!r} needs either a member of iqprior.scoring.specs.SPECS or a "
                             f"reason why it is missing, not both")
        if self.member is not None and self.member not in SPECS:
            raise ValueError(f"column {self.key!r}: {self.member!r} is not in iqprior.scoring.specs.SPECS")

    @property
    def spec(self) -> Optional[MetricSpec]:
        """The metric's spec (``None`` for a missing paper column)."""
        return SPECS[self.member] if self.member is not None else None

    @property
    def lower_better(self) -> bool:
        return self.spec.lower_better if self.spec is not None else self.missing_lower_better

    @property
    def full_reference(self) -> bool:
        """Needs a ground-truth image (``--gt``)."""
        return self.spec is not None and self.spec.full_reference

    @property
    def score_range(self) -> tuple[float, float]:
        """Documented ``(low, high)`` of the raw score (normalises gains in the over-optimisation monitor)."""
        lo, hi = self.spec.score_range if self.spec is not None else (0.0, 1.0)
        return float(lo), float(hi)

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_better else "↑"

    @property
    def title(self) -> str:
        """Column title with the direction arrow, e.g. ``"MDFS ↓"``."""
        return f"{self.label} {self.arrow}"

    def better(self, delta: float) -> float:
        """``delta`` signed so that positive means better (the paper's "(+0.33)" for MDFS 18.41 -> 18.08)."""
        return -delta if self.lower_better else delta


_MUSIQ_GFIQA = ("pyiqa has no MUSIQ trained on GFIQA and no such weights are released; iqprior's 'paper' "
                "scorer preset trains with topiq_nr-face (CGFIQA) as a stand-in, but a stand-in would not "
                "reproduce this column")
_MDFS = ("pyiqa has no MDFS (Ni et al. 2024, opinion-unaware multi-scale deep feature statistics) and "
         "iqprior does not port it")

METRICS: dict[str, BenchMetric] = {m.key: m for m in [
    # paper Tables 1-2 (faces), in the paper's column order
    BenchMetric("topiq-gfiqa", "TOPIQ-GFIQA", member="topiq_nr-face-v1", decimals=3),
    BenchMetric("musiq-gfiqa", "MUSIQ-GFIQA", decimals=3, missing=_MUSIQ_GFIQA),
    BenchMetric("musiq-koniq", "MUSIQ-KonIQ", member="musiq", decimals=2),
    BenchMetric("musiq-ava", "MUSIQ-AVA", member="musiq-ava", decimals=2),
    BenchMetric("arniqa", "ARNIQA", member="arniqa", decimals=3),
    BenchMetric("mdfs", "MDFS", decimals=2, missing=_MDFS, missing_lower_better=True),
    BenchMetric("qalign", "Q-Align", member="qalign", decimals=2),
    BenchMetric("clipiqa", "CLIP-IQA", member="clipiqa", decimals=3),
    # paper Table 6 (underwater)
    BenchMetric("uranker", "URanker", member="uranker", decimals=4),
    BenchMetric("uciqe", "UCIQE", member="uciqe", decimals=4),
    BenchMetric("uiqm", "UIQM", member="uiqm", decimals=3),
    # full reference (with --gt)
    BenchMetric("psnr", "PSNR", member="psnr", decimals=2),
    BenchMetric("ssim", "SSIM", member="ssim", decimals=4),
    BenchMetric("lpips", "LPIPS", member="lpips", decimals=4),
    # hand-crafted, need no weights (tests, the bundled samples)
    BenchMetric("piqe", "PIQE", member="piqe", decimals=2),
    BenchMetric("entropy", "Entropy", member="entropy", decimals=3),
]}

PRESETS: dict[str, tuple[str, ...]] = {
    "paper": ("topiq-gfiqa", "musiq-gfiqa", "musiq-koniq", "musiq-ava", "arniqa", "mdfs", "qalign", "clipiqa"),
    "underwater": ("uranker", "uciqe", "uiqm"),
    "fr": ("psnr", "ssim", "lpips"),
    "offline": ("piqe", "entropy"),
}
#: added to the table when ground truth is given (``--gt``), unless listed already
FR_DEFAULT = PRESETS["fr"]


def _from_specs(name: str) -> Optional[BenchMetric]:
    """A column for any metric of ``iqprior.scoring.specs.SPECS`` not in :data:`METRICS`."""
    spec = SPECS.get(name)
    if spec is None:
        return None
    lo, hi = spec.score_range
    return BenchMetric(name, spec.paper_name or name, member=name, decimals=2 if hi - lo > 20 else 3)


def get_metric(name: str) -> BenchMetric:
    """The metric ``name``: a key of :data:`METRICS`, a metric name in ``SPECS``, or a pyiqa name of one."""
    if name in METRICS:
        return METRICS[name]
    for m in METRICS.values():
        if m.spec is not None and name in (m.member, m.spec.pyiqa_name):
            return m
    m = _from_specs(name)
    if m is not None:
        return m
    known = list(METRICS) + list(PRESETS)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown metric {name!r}{hint} (known: {', '.join(known)}; or any metric of "
                     f"iqprior.scoring.specs.SPECS)")


def resolve_metrics(names: str | list[str] | tuple[str, ...], gt: bool = False) -> list[BenchMetric]:
    """Metrics for ``--metrics``: comma-separated keys and presets (``paper``, ``underwater``, ...).

    With ``gt``, PSNR/SSIM/LPIPS are appended (once) in front of the no-reference
    columns, as in the paper's Table 6. Without ``gt``, full-reference metrics are
    dropped with a ``ValueError`` if asked for explicitly.
    """
    tokens = [t.strip() for t in (names.split(",") if isinstance(names, str) else names) if t.strip()]
    if not tokens:
        raise ValueError("--metrics is empty; give a preset (paper, underwater, offline) or metric names")
    out: list[BenchMetric] = []
    for t in tokens:
        for key in PRESETS.get(t, (t,)):
            m = get_metric(key)
            if m.key not in {o.key for o in out}:
                out.append(m)
    if gt:
        fr = [get_metric(k) for k in FR_DEFAULT if k not in {o.key for o in out}]
        out = [m for m in out if m.full_reference] + fr + [m for m in out if not m.full_reference]
    else:
        asked = [m.key for m in out if m.full_reference]
        if asked:
            raise ValueError(f"full-reference metric(s) {', '.join(asked)} need ground truth: pass --gt DIR")
    return out


def availability(metric: BenchMetric) -> tuple[bool, str]:
    """``(True, "")`` when ``metric`` can be computed now, else ``(False, reason)``. Never raises."""
    if metric.missing:
        return False, metric.missing
    from iqprior.scoring.fullref import fullref_available
    from iqprior.scoring.members import member_available

    try:
        return (fullref_available if metric.full_reference else member_available)(metric.member)
    except Exception as e:  # a broken spec must not stop the benchmark
        return False, f"{type(e).__name__}: {e}"


ScoreFn = Callable[..., torch.Tensor]


def build_metric(metric: BenchMetric, device: torch.device | str = "cpu") -> ScoreFn:
    """A function ``f(x, gt=None) -> (B,)`` raw scores for ``(B, 3, H, W)`` RGB [0, 1] tensors.

    Call :func:`availability` first; this raises whatever the backend raises.
    """
    from iqprior.scoring.fullref import build_fullref
    from iqprior.scoring.members import build_member

    if metric.spec is None:
        raise ValueError(f"{metric.label} cannot be computed: {metric.missing}")
    device = torch.device(device)
    if metric.full_reference:
        return build_fullref(metric.spec, device)
    member = build_member(metric.spec, device=device).eval()

    @torch.no_grad()
    def score(x: torch.Tensor, gt: Optional[torch.Tensor] = None) -> torch.Tensor:
        return member(x.to(device)).detach().float().cpu().reshape(x.shape[0])

    return score
