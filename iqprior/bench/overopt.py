"""``iqprior bench overopt``: an over-optimisation monitor for models trained with a quality loss.

Beyond the paper: IQPFR (arXiv 2503.09294, Sec. 4.2, Table 5) argues that
optimising an NR-IQA score in a continuous space "gets high quality scores but
low human perception", while its discrete codebook space avoids this. A model
that games the metrics it was optimised on (members A) improves those far
more than metrics it never saw (held-out members B), so we measure:

- per member ``m``: the gain of the model's outputs over a reference (the
  inputs, or the base model's outputs) as a fraction of ``m``'s score range,
  ``g_m = better(mean_model - mean_ref) / (high - low)`` (positive = better);
- ``G_A`` and ``G_B``: the mean gain over the optimised and the held-out members;
- ``gap = G_A - G_B`` and ``transfer = G_B / G_A``; divergence is flagged when
  ``gap > threshold`` (default 0.05: optimised members gained 5 % of their range
  more than held-out ones), and per image, the share of images where A rose
  while B fell.

How to read it: docs/guides/evaluating.md, "Over-optimisation monitor".
"""
from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from iqprior.levels import DEFAULT_LEVEL

from .metrics import BenchMetric, availability, get_metric

log = logging.getLogger("iqprior.bench")

INPUT = "input"


@dataclass(frozen=True)
class OverOptConfig:
    model: str
    data: Path
    out: Path
    optimised: tuple[str, ...]
    held_out: tuple[str, ...]
    reference: str = INPUT
    threshold: float = 0.05
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    random_init: bool = False
    device: str = "cpu"
    score: int = DEFAULT_LEVEL
    progress: bool = True


@dataclass(frozen=True)
class MemberGain:
    member: str
    label: str
    group: str                # "optimised" or "held-out"
    model_mean: float
    reference_mean: float
    score_range: tuple[float, float]
    gain: float               # normalised, positive = better


@dataclass(frozen=True)
class OverOptReport:
    model: str
    reference: str
    n_images: int
    gains: tuple[MemberGain, ...]
    optimised_gain: Optional[float]
    held_out_gain: Optional[float]
    gap: Optional[float]
    transfer: Optional[float]
    disagreement: Optional[float]      # share of images: optimised members up, held-out members down
    threshold: float
    diverged: bool
    verdict: str
    unavailable: Mapping[str, str] = field(default_factory=dict)
    random_weights: tuple[str, ...] = ()   # models run with random weights: the numbers are meaningless


def _mean(v: Sequence[float]) -> Optional[float]:
    return statistics.fmean(v) if v else None


def overopt_report(model: str, reference: str, model_scores: Mapping[str, Mapping[str, float]],
                   reference_scores: Mapping[str, Mapping[str, float]], optimised: Sequence[BenchMetric],
                   held_out: Sequence[BenchMetric], threshold: float = 0.05,
                   unavailable: Optional[Mapping[str, str]] = None) -> OverOptReport:
    """Compare gains on ``optimised`` and ``held_out`` members.

    ``model_scores`` / ``reference_scores``: metric key -> image -> raw score;
    only images scored in both are compared.
    """
    groups = [("optimised", m) for m in optimised] + [("held-out", m) for m in held_out]
    gains: list[MemberGain] = []
    per_image: dict[str, dict[str, list[float]]] = {}
    images: set[str] = set()
    for group, m in groups:
        a, b = model_scores.get(m.key, {}), reference_scores.get(m.key, {})
        common = sorted(set(a) & set(b))
        if not common:
            continue
        images |= set(common)
        lo, hi = m.score_range
        span = (hi - lo) or 1.0
        gains.append(MemberGain(m.key, m.label, group, _mean([a[i] for i in common]),
                                _mean([b[i] for i in common]), (lo, hi),
                                m.better(_mean([a[i] for i in common]) - _mean([b[i] for i in common])) / span))
        for i in common:
            per_image.setdefault(i, {}).setdefault(group, []).append(m.better(a[i] - b[i]) / span)
    g_a = _mean([g.gain for g in gains if g.group == "optimised"])
    g_b = _mean([g.gain for g in gains if g.group == "held-out"])
    gap = transfer = disagreement = None
    if g_a is not None and g_b is not None:
        gap = g_a - g_b
        transfer = g_b / g_a if g_a > 0 else None
        both = [v for v in per_image.values() if "optimised" in v and "held-out" in v]
        if both:
            disagreement = sum(_mean(v["optimised"]) > 0 and _mean(v["held-out"]) < 0 for v in both) / len(both)
    diverged = gap is not None and gap > threshold
    if g_a is None or g_b is None:
        verdict = "cannot judge: no " + ("optimised" if g_a is None else "held-out") + " member could be scored"
    elif g_a <= 0:
        verdict = "no gain on the optimised members"
    elif diverged:
        verdict = (f"DIVERGED: optimised members gained {g_a:+.3f}, held-out members {g_b:+.3f} of their range "
                   f"(gap {gap:.3f} > {threshold}); suspect over-optimisation")
    else:
        verdict = f"consistent: held-out members follow (gap {gap:.3f} <= {threshold})"
    return OverOptReport(model, reference, len(images), tuple(gains), g_a, g_b, gap, transfer, disagreement,
                         threshold, diverged, verdict, dict(unavailable or {}))


def report_markdown(r: OverOptReport) -> str:
    def f(v: Optional[float], fmt: str = "+.4f") -> str:
        return "—" if v is None else format(v, fmt)

    random = (f" (RANDOM weights: {', '.join(r.random_weights)})" if r.random_weights else "")
    lines = [f"### Over-optimisation monitor: {r.model} vs {r.reference} ({r.n_images} images){random}", "",
             "| Member | Group | Range | Reference | Model | Gain (fraction of range) |", "|---|---|---|---:|---:|---:|"]
    for g in r.gains:
        lines.append(f"| {g.label} | {g.group} | {g.score_range[0]:g}..{g.score_range[1]:g} | "
                     f"{g.reference_mean:.4f} | {g.model_mean:.4f} | {g.gain:+.4f} |")
    lines += ["", f"- optimised gain G_A: {f(r.optimised_gain)}", f"- held-out gain G_B: {f(r.held_out_gain)}",
              f"- gap G_A − G_B: {f(r.gap)} (threshold {r.threshold})",
              f"- transfer G_B / G_A: {f(r.transfer, '.2f')}",
              f"- images where optimised members rose and held-out fell: "
              f"{'—' if r.disagreement is None else format(r.disagreement, '.0%')}",
              "", f"**{r.verdict}**"]
    if r.random_weights:
        lines += ["", f"**{', '.join(r.random_weights)} ran with RANDOM weights (--random-init): "
                      f"these numbers are meaningless.**"]
    if r.unavailable:
        lines += ["", "Unavailable members:"] + [f"- {k}: {v}" for k, v in r.unavailable.items()]
    return "\n".join(lines) + "\n"


def run_overopt(cfg: OverOptConfig) -> tuple[OverOptReport, dict[str, Path]]:
    """Restore with the model (and the reference model), score with A and B, write the report."""
    from iqprior.io import atomic_write_text

    from .quality import INPUT_ROW, _check_run_meta, _Scorer, score_row
    from .runner import checkpoint_for, image_items, restore_folder

    if not cfg.optimised or not cfg.held_out:
        raise ValueError("give both --optimised and --held-out IQA members")
    optimised = [get_metric(n) for n in cfg.optimised]
    held_out = [get_metric(n) for n in cfg.held_out]
    overlap = {m.key for m in optimised} & {m.key for m in held_out}
    if overlap:
        raise ValueError(f"members {sorted(overlap)} are both optimised and held out")
    if any(m.full_reference for m in optimised + held_out):
        raise ValueError("the monitor compares no-reference IQA members; drop PSNR/SSIM/LPIPS")
    out = Path(cfg.out)
    items = image_items(cfg.data)
    _check_run_meta(out, {"data": str(Path(cfg.data).resolve()), "gt": None}, False)
    unavailable = {}
    for m in optimised + held_out:
        ok, why = availability(m)
        if not ok:
            unavailable[m.label] = why
            log.warning("member %s unavailable: %s", m.label, why)
    usable = [m for m in optimised + held_out if m.label not in unavailable]

    rows: dict[str, tuple[dict[str, Path], set[str]]] = {}
    for name in [cfg.model] + ([] if cfg.reference == INPUT else [cfg.reference]):
        res = restore_folder(name, items, out / name, checkpoint_for(name, cfg.checkpoints, cfg.random_init),
                             device=cfg.device, score=cfg.score, progress=cfg.progress,
                             source=str(Path(cfg.data).resolve()))
        if res.model_error:
            raise ValueError(f"{name} could not be run: {res.model_error}")
        rows[name] = (res.outputs, res.new)
    if cfg.reference == INPUT:
        rows[INPUT_ROW] = (dict(items), set())
    ref_row = INPUT_ROW if cfg.reference == INPUT else cfg.reference

    scorer = _Scorer(cfg.device)
    scores: dict[str, dict[str, dict[str, float]]] = {r: {} for r in rows}
    for m in usable:
        for row, (images, fresh) in rows.items():
            scores[row][m.key] = score_row(row, images, m, scorer, out, None, fresh, cfg.progress)
        scorer.release(m)
        if m.key in scorer.failed:
            unavailable[m.label] = scorer.failed[m.key]
    report = overopt_report(cfg.model, cfg.reference, scores[cfg.model], scores[ref_row],
                            [m for m in optimised if m.label not in unavailable],
                            [m for m in held_out if m.label not in unavailable], cfg.threshold, unavailable)
    random = tuple(n for n in rows if n != INPUT_ROW and checkpoint_for(n, cfg.checkpoints, cfg.random_init) is None)
    if random:
        report = dataclasses.replace(report, random_weights=random)
    files = {"json": out / "overopt.json", "markdown": out / "overopt.md"}
    atomic_write_text(files["json"], json.dumps(asdict(report), indent=1))
    atomic_write_text(files["markdown"], report_markdown(report))
    (log.warning if report.diverged else log.info)("overopt: %s", report.verdict)
    return report, files
