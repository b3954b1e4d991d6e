"""``iqprior bench quality``: the paper's quality tables (IQPFR, arXiv 2503.09294, Tables 1, 2, 6) in one call.

Every image of ``data`` is restored by every model (cached, resumable; see
:mod:`iqprior.bench.runner`), the inputs and each model's outputs are scored
with every metric (per-image scores cached under ``<out>/scores/``), and the
means are written as ``quality.md`` and ``quality.csv`` in the paper's layout
(:mod:`iqprior.bench.tables`) plus ``quality.json`` with every per-image
score, and ``bench.log``. Unavailable metrics and models that could not run
are listed with the reason, never dropped silently.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch

from iqprior.levels import DEFAULT_LEVEL

from .metrics import BenchMetric, availability, build_metric, resolve_metrics
from .runner import RestoreResult, checkpoint_for, find_gt, image_items, restore_folder
from .tables import TableRow, to_csv, to_markdown

log = logging.getLogger("iqprior.bench")

INPUT_ROW = "Input"
SCORES_DIR = "scores"


@dataclass(frozen=True)
class QualityConfig:
    """Settings of one quality benchmark (the CLI flags of ``iqprior bench quality``)."""

    models: tuple[str, ...]
    data: Path
    out: Path
    gt: Optional[Path] = None
    metrics: str = "paper"
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    random_init: bool = False       # models without a checkpoint get random weights (tests, smoke runs)
    device: str = "cpu"
    score: int = DEFAULT_LEVEL                  # condition level of "+" models (the paper uses the top level)
    include_input: bool = True      # an "Input" row, as in the paper's Table 2
    overwrite: bool = False
    progress: bool = True
    title: str = ""
    precision: str = "fp32"         # autocast of the models: fp32, bf16 or fp16
    exact: bool = False             # the models' exact (upstream-identical) path instead of the fast one


@dataclass
class QualityResult:
    rows: list[TableRow]
    metrics: list[BenchMetric]
    unavailable: dict[str, str]
    scores: dict[str, dict[str, dict[str, float]]]   # row -> metric key -> rel -> raw score
    restore: dict[str, RestoreResult]
    files: dict[str, Path]


def _scores_file(out: Path, row: str, metric: BenchMetric) -> Path:
    return out / SCORES_DIR / ("_input" if row == INPUT_ROW else row) / f"{metric.key}.json"


def _load_cache(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("ignoring unreadable score cache %s", path)
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}


def _save_cache(path: Path, scores: Mapping[str, float]) -> None:
    from iqprior.io import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(dict(sorted(scores.items())), indent=1))


def _load_pair(path: Path, gt_path: Optional[Path]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    from iqprior.io import read_image

    x = read_image(path)[None]
    if gt_path is None:
        return x, None
    gt = read_image(gt_path)[None]
    if x.shape[-2:] != gt.shape[-2:]:  # e.g. a face model's 512 output of a smaller input
        x = torch.nn.functional.interpolate(x, size=gt.shape[-2:], mode="bicubic", align_corners=False,
                                            antialias=True).clamp_(0, 1)
    return x, gt


class _Scorer:
    """Builds each metric once, on first need, and remembers metrics that failed to build."""

    def __init__(self, device: str):
        self.device = device
        self.fns: dict[str, object] = {}
        self.failed: dict[str, str] = {}

    def get(self, m: BenchMetric):
        if m.key not in self.fns and m.key not in self.failed:
            try:
                self.fns[m.key] = build_metric(m, self.device)
            except Exception as e:  # a backend error makes the metric unavailable, not the run
                self.failed[m.key] = f"could not be built: {type(e).__name__}: {e}"
                log.warning("metric %s unavailable: %s", m.label, self.failed[m.key])
        return self.fns.get(m.key)

    def release(self, m: BenchMetric) -> None:
        """Free a metric's network once its column is done (Q-Align alone needs ~16 GB)."""
        if self.fns.pop(m.key, None) is not None and torch.device(self.device).type == "cuda":
            torch.cuda.empty_cache()


def score_row(row: str, images: Mapping[str, Path], metric: BenchMetric, scorer: _Scorer, out: Path,
              gt_root: Optional[Path], fresh: set[str] = frozenset(), progress: bool = True) -> dict[str, float]:
    """Raw scores of ``images`` (rel -> path) with ``metric``, reusing the cache except for ``fresh``."""
    from tqdm.auto import tqdm

    cache_path = _scores_file(out, row, metric)
    cache = {k: v for k, v in _load_cache(cache_path).items() if k in images and k not in fresh}
    todo = [rel for rel in images if rel not in cache]
    if metric.full_reference:
        todo = [rel for rel in todo if find_gt(gt_root, rel) is not None]
    if todo:
        fn = scorer.get(metric)
        if fn is None:
            return {}
        for i, rel in enumerate(tqdm(todo, desc=f"{metric.label} {row}", disable=not progress, unit="img")):
            try:
                x, gt = _load_pair(images[rel], find_gt(gt_root, rel) if metric.full_reference else None)
                value = float(fn(x, gt)[0])
            except (RuntimeError, ValueError) as e:
                log.warning("%s failed on %s/%s: %s", metric.label, row, rel, e)
                continue
            if math.isfinite(value):
                cache[rel] = value
            if (i + 1) % 16 == 0:
                _save_cache(cache_path, cache)
        _save_cache(cache_path, cache)
    return cache


def _check_run_meta(out: Path, meta: dict, overwrite: bool) -> None:
    """Cached scores in ``out`` belong to one input (and GT) folder; another one needs another --out."""
    import shutil

    path = out / "bench_run.json"
    old = json.loads(path.read_text()) if path.is_file() else None
    if old is not None and old != meta:
        if not overwrite:
            raise ValueError(f"{out} holds results for {old}, not {meta}; choose another --out "
                             f"(or pass --overwrite to redo everything there)")
        shutil.rmtree(out / SCORES_DIR, ignore_errors=True)
    from iqprior.io import atomic_write_text
    atomic_write_text(path, json.dumps(meta, indent=1))


def run_quality(cfg: QualityConfig) -> QualityResult:
    """Run the benchmark described by ``cfg``; returns the table and writes it under ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "bench.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        return _run(cfg, out)
    finally:
        log.removeHandler(handler)
        handler.close()


def _run(cfg: QualityConfig, out: Path) -> QualityResult:
    if not cfg.models:
        raise ValueError("no models given: pass --models, e.g. --models codeformer,codeformer+")
    gt_root = Path(cfg.gt) if cfg.gt is not None else None
    if gt_root is not None and not gt_root.is_dir():
        raise FileNotFoundError(f"--gt directory not found: {gt_root}")
    items = image_items(cfg.data)
    metrics = resolve_metrics(cfg.metrics, gt=gt_root is not None)
    source = str(Path(cfg.data).resolve())
    _check_run_meta(out, {"data": source, "gt": str(gt_root.resolve()) if gt_root else None}, cfg.overwrite)
    no_gt = [rel for rel, _ in items if gt_root is not None and find_gt(gt_root, rel) is None]
    if no_gt:
        log.warning("%d of %d images have no ground truth under %s (e.g. %s): full-reference columns skip them",
                    len(no_gt), len(items), gt_root, no_gt[0])
    log.info("quality benchmark: %d images from %s, models %s, metrics %s", len(items), cfg.data,
             ", ".join(cfg.models), ", ".join(m.label for m in metrics))

    unavailable: dict[str, str] = {}
    for m in metrics:
        ok, why = availability(m)
        if not ok:
            unavailable[m.key] = why
            log.warning("metric %s unavailable: %s", m.label, why)

    restore: dict[str, RestoreResult] = {}
    for name in cfg.models:
        ckpt = checkpoint_for(name, cfg.checkpoints, cfg.random_init)
        res = restore_folder(name, items, out / name, ckpt, device=cfg.device, score=cfg.score,
                             overwrite=cfg.overwrite, progress=cfg.progress, source=source,
                             precision=cfg.precision, exact=cfg.exact)
        restore[name] = res
        log.info("%s: %d restored, %d reused from %s, %d failed%s", name, res.restored, res.reused, out / name,
                 len(res.errors), f"; not run: {res.model_error}" if res.model_error else "")

    sources: list[tuple[str, dict[str, Path], set[str]]] = []
    if cfg.include_input:
        sources.append((INPUT_ROW, dict(items), set()))
    for name, res in restore.items():
        sources.append((name, res.outputs, res.new))

    scorer = _Scorer(cfg.device)
    scores: dict[str, dict[str, dict[str, float]]] = {row: {} for row, _, _ in sources}
    for m in metrics:
        if m.key in unavailable:
            continue
        for row, images, fresh in sources:
            if images:
                scores[row][m.key] = score_row(row, images, m, scorer, out, gt_root, fresh, cfg.progress)
        scorer.release(m)
        if m.key in scorer.failed:
            unavailable[m.key] = scorer.failed[m.key]

    rows = []
    for row, _images, _ in sources:
        r = TableRow(row, ranked=row != INPUT_ROW)
        for m in metrics:
            vals = list(scores[row].get(m.key, {}).values()) if m.key not in unavailable else []
            r.values[m.key] = sum(vals) / len(vals) if vals else None
            r.counts[m.key] = len(vals)
        res = restore.get(row)
        if res is not None:
            ckpt = checkpoint_for(row, cfg.checkpoints, cfg.random_init)
            r.weights = "random" if ckpt is None else str(ckpt)
        if res is not None and res.model_error:
            r.note = "not run"
        elif res is not None and res.errors:
            r.note = f"{len(res.errors)} of {len(items)} images failed"
        rows.append(r)

    notes = [f"{len(items)} images from `{cfg.data}`" + (f", ground truth `{gt_root}`" if gt_root else "")
             + f"; \"+\" models conditioned on level {cfg.score}."]
    if no_gt:
        notes.append(f"{len(no_gt)} images have no ground truth; full-reference columns average the others.")
    for name, res in restore.items():
        if res.model_error:
            notes.append(f"{name} not run: {res.model_error}")
        ckpt = checkpoint_for(name, cfg.checkpoints, cfg.random_init)
        if ckpt is None:
            notes.append(f"{name}: RANDOM weights (--random-init); numbers are meaningless")
    title = cfg.title or f"Quality on {Path(cfg.data).name}"
    files = {"markdown": out / "quality.md", "csv": out / "quality.csv", "json": out / "quality.json",
             "log": out / "bench.log"}
    from iqprior.io import atomic_write_text

    atomic_write_text(files["markdown"], to_markdown(rows, metrics, title, unavailable, notes))
    atomic_write_text(files["csv"], to_csv(rows, metrics, unavailable))
    summary = {
        "config": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in asdict(cfg).items()},
        "metrics": [{"key": m.key, "label": m.label, "lower_better": m.lower_better,
                     "available": m.key not in unavailable, "reason": unavailable.get(m.key, "")} for m in metrics],
        "rows": [{"name": r.name, "values": r.values, "counts": r.counts, "note": r.note, "weights": r.weights}
                 for r in rows],
        "random_weights": [r.name for r in rows if r.weights == "random"],
        "models": {n: {"restored": r.restored, "reused": r.reused, "errors": r.errors, "model_error": r.model_error}
                   for n, r in restore.items()},
        "per_image": scores,
    }
    atomic_write_text(files["json"], json.dumps(summary, indent=1, default=str))
    log.info("wrote %s and %s", files["markdown"], files["csv"])
    failed = {n: r.model_error for n, r in restore.items() if r.model_error}
    if len(failed) == len(restore):
        name, why = next(iter(failed.items()))
        raise ValueError(f"no model could be run ({name}: {why}); give --checkpoints NAME=PATH, fetch the "
                         f"official files (`iqprior weights download`), or pass --random-init for a smoke test")
    return QualityResult(rows, metrics, unavailable, scores, restore, files)


def combine_runs(runs: Sequence[Path], out: Path, names: Sequence[str] = (), title: str = "") -> dict[str, Path]:
    """One table over several ``bench quality`` runs (one per dataset), as the paper's Table 1.

    Reads each run's ``quality.json``; writes ``OUT/table.md`` (a Datasets
    column, best / second best per dataset) and ``OUT/table.csv`` (a
    ``dataset`` column in front of the per-run CSV columns).
    """
    import csv
    import io

    from iqprior.io import atomic_write_text

    from .metrics import get_metric
    from .tables import to_markdown_by_dataset

    if not runs:
        raise ValueError("give at least one run folder (--runs)")
    if names and len(names) != len(runs):
        raise ValueError(f"--names has {len(names)} entries for {len(runs)} runs")
    tables, metrics, unavailable, notes = [], [], {}, []
    for i, run in enumerate(runs):
        path = Path(run) / "quality.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {run} the --out folder of `iqprior bench quality`?")
        data = json.loads(path.read_text())
        dataset = names[i] if names else Path(data["config"]["data"]).name
        for m in data["metrics"]:
            if m["key"] not in {x.key for x in metrics}:
                metrics.append(get_metric(m["key"]))
            if not m["available"]:
                unavailable.setdefault(m["key"], m["reason"])
        rows = [TableRow(r["name"], r["values"], r["counts"], ranked=r["name"] != INPUT_ROW, note=r["note"],
                         weights=r.get("weights", "")) for r in data["rows"]]
        tables.append((dataset, rows))
        notes.append(f"{dataset}: `{run}`")
    # a metric computed on some dataset is not "unavailable" for the whole table
    computed = {k for _, rows in tables for r in rows for k, v in r.values.items() if v is not None}
    unavailable = {k: v for k, v in unavailable.items() if k not in computed}
    out = Path(out)
    files = {"markdown": out / "table.md", "csv": out / "table.csv"}
    atomic_write_text(files["markdown"], to_markdown_by_dataset(tables, metrics, title, unavailable, notes))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for i, (dataset, rows) in enumerate(tables):
        lines = list(csv.reader(io.StringIO(to_csv(rows, metrics))))
        if i == 0:
            writer.writerow(["dataset", *lines[0]])
        for line in lines[1:]:
            writer.writerow([dataset, *line])
    atomic_write_text(files["csv"], buf.getvalue())
    return files
