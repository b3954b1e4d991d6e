"""The evaluation metrics of the IQPFR paper (arXiv 2503.09294), as one name-keyed table.

Tables 1-2 (faces) report eight no-reference metrics: TOPIQ-GFIQA, MUSIQ-GFIQA,
MUSIQ-KonIQ, MUSIQ-AVA, ARNIQA, MDFS (lower is better), Q-Align and CLIP-IQA.
Table 6 (underwater) reports PSNR, SSIM, URanker, UCIQE and UIQM.

No-reference metrics are the ensemble members of :mod:`iqprior.scoring`
(``iqprior.scoring.specs.SPECS``): built and weight-checked there, with
``torch.load(weights_only=True)``. Full-reference metrics (PSNR, SSIM, LPIPS)
are pyiqa's, built here (:mod:`iqprior.bench.fullref`). A metric that cannot
be computed (pyiqa lacks it, or its weights are not on disk) is reported as
unavailable with the reason; it never crashes a run.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Optional

import torch

# where a full-reference weight file lives
from iqprior.scoring.specs import HUB_CHECKPOINTS as HUB_DIR  # noqa: E402
from iqprior.scoring.specs import PYIQA as PYIQA_DIR  # noqa: E402


@dataclass(frozen=True)
class BenchMetric:
    """One column of a benchmark table.

    Attributes:
        key: the name used on the command line (``--metrics``).
        label: the column title, as the paper writes it.
        member: name of the no-reference member in ``iqprior.scoring.specs.SPECS``.
        pyiqa_name: pyiqa name of a full-reference metric (built in :mod:`.fullref`).
        full_reference: needs a ground-truth image (``--gt``).
        lower_better: the paper's arrow is ↓.
        decimals: digits shown in the table (as in the paper).
        score_range: documented ``(low, high)`` of the raw score, used to
            normalise gains in the over-optimisation monitor.
        missing: why the metric cannot be computed at all (empty when it can).
        weights: ``(file, where)`` of the files a full-reference metric needs.
    """

    key: str
    label: str
    member: Optional[str] = None
    pyiqa_name: Optional[str] = None
    full_reference: bool = False
    lower_better: bool = False
    decimals: int = 3
    score_range: tuple[float, float] = (0.0, 1.0)
    missing: str = ""
    weights: tuple[tuple[str, str], ...] = ()

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

    def normalised_gain(self, new: float, old: float) -> float:
        """Improvement ``new`` over ``old`` as a fraction of the score range (positive = better)."""
        lo, hi = self.score_range
        return self.better(new - old) / (hi - lo)


_MUSIQ_GFIQA = ("pyiqa has no MUSIQ trained on GFIQA and no such weights are released; iqprior's 'paper' "
                "scorer preset trains with topiq_nr-face (CGFIQA) as a stand-in, but a stand-in would not "
                "reproduce this column")
_MDFS = ("pyiqa has no MDFS (Ni et al. 2024, opinion-unaware multi-scale deep feature statistics) and "
         "iqprior does not port it")

METRICS: dict[str, BenchMetric] = {m.key: m for m in [
    # paper Tables 1-2 (faces), in the paper's column order
    BenchMetric("topiq-gfiqa", "TOPIQ-GFIQA", member="topiq_nr-face-v1", decimals=3),
    BenchMetric("musiq-gfiqa", "MUSIQ-GFIQA", decimals=3, missing=_MUSIQ_GFIQA),
    BenchMetric("musiq-koniq", "MUSIQ-KonIQ", member="musiq", decimals=2, score_range=(0.0, 100.0)),
    BenchMetric("musiq-ava", "MUSIQ-AVA", member="musiq-ava", decimals=2, score_range=(1.0, 10.0)),
    BenchMetric("arniqa", "ARNIQA", member="arniqa", decimals=3),
    BenchMetric("mdfs", "MDFS", lower_better=True, decimals=2, score_range=(0.0, 40.0), missing=_MDFS),
    BenchMetric("qalign", "Q-Align", member="qalign", decimals=2, score_range=(1.0, 5.0)),
    BenchMetric("clipiqa", "CLIP-IQA", member="clipiqa", decimals=3),
    # paper Table 6 (underwater)
    BenchMetric("uranker", "URanker", member="uranker", decimals=4, score_range=(-1.0, 2.0)),
    BenchMetric("uciqe", "UCIQE", member="uciqe", decimals=4),
    BenchMetric("uiqm", "UIQM", member="uiqm", decimals=3, score_range=(0.0, 5.0)),
    # full reference (with --gt)
    BenchMetric("psnr", "PSNR", pyiqa_name="psnr", full_reference=True, decimals=2, score_range=(0.0, 50.0)),
    BenchMetric("ssim", "SSIM", pyiqa_name="ssim", full_reference=True, decimals=4),
    BenchMetric("lpips", "LPIPS", pyiqa_name="lpips", full_reference=True, lower_better=True, decimals=4,
                weights=(("alexnet-owt-7be5be79.pth", HUB_DIR), ("LPIPS_v0.1_alex-df73285e.pth", PYIQA_DIR))),
    # hand-crafted, need no weights (tests, the bundled samples)
    BenchMetric("piqe", "PIQE", member="piqe", lower_better=True, decimals=2, score_range=(0.0, 100.0)),
    BenchMetric("entropy", "Entropy", member="entropy", decimals=3, score_range=(0.0, 8.0)),
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
    """A column for any member of ``iqprior.scoring.specs.SPECS`` not in :data:`METRICS`."""
    try:
        from iqprior.scoring.specs import SPECS
    except ImportError:
        return None
    spec = SPECS.get(name)
    if spec is None:
        return None
    lo, hi = spec.score_range
    decimals = 2 if hi - lo > 20 else 3
    return BenchMetric(name, spec.paper_name or name, member=name, lower_better=spec.lower_better,
                       decimals=decimals, score_range=(float(lo), float(hi)))


def get_metric(name: str) -> BenchMetric:
    """The metric ``name``: a key of :data:`METRICS`, a scorer member name, or a pyiqa name of one."""
    if name in METRICS:
        return METRICS[name]
    for m in METRICS.values():
        if name in (m.member, m.pyiqa_name):
            return m
    m = _from_specs(name)
    if m is not None:
        return m
    known = list(METRICS) + list(PRESETS)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown metric {name!r}{hint} (known: {', '.join(known)}; or any member of "
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
    if metric.full_reference:
        from .fullref import fullref_available
        return fullref_available(metric)
    try:
        from iqprior.scoring.members import member_available
    except ImportError as e:
        return False, f"iqprior.scoring is not importable ({e})"
    try:
        return member_available(metric.member or metric.key)
    except Exception as e:  # a broken spec must not stop the benchmark
        return False, f"{type(e).__name__}: {e}"


ScoreFn = Callable[..., torch.Tensor]


def build_metric(metric: BenchMetric, device: torch.device | str = "cpu") -> ScoreFn:
    """A function ``f(x, gt=None) -> (B,)`` raw scores for ``(B, 3, H, W)`` RGB [0, 1] tensors.

    Call :func:`availability` first; this raises whatever the backend raises.
    """
    device = torch.device(device)
    if metric.full_reference:
        from .fullref import build_fullref
        return build_fullref(metric, device)
    member = _build_member(metric.member or metric.key, device)

    @torch.no_grad()
    def score(x: torch.Tensor, gt: Optional[torch.Tensor] = None) -> torch.Tensor:
        return member(x.to(device)).detach().float().cpu().reshape(x.shape[0])

    return score


def _build_member(name: str, device: torch.device):
    """The scorer's member ``name`` as a module ``x -> (B,)`` (adapts to what iqprior.scoring offers)."""
    try:
        from iqprior.scoring.members import build_member
    except ImportError:
        build_member = None
    if build_member is not None:
        return build_member(name, device=device).eval()
    from iqprior.scoring import create_scorer

    scorer = create_scorer(members=[name], device=device)
    return lambda x: scorer.raw(x)[name]

