"""``iqprior bench speed``: forward latency, throughput and peak memory per adapter.

Each model is timed on random ``(B, 3, S, S)`` inputs for every size ``S`` and
batch size ``B``: ``warmup`` untimed calls, then ``iters`` timed calls
(``torch.cuda.synchronize`` around each on CUDA); the median is reported as
latency per batch, and images/s = ``B / latency``. Peak memory is CUDA's
``max_memory_allocated`` on GPU and, on CPU, the rise of the process's peak
resident set size (``VmHWM`` after resetting it through
``/proc/self/clear_refs``; a sampling thread where that is not possible).
A "+" model's latency is also given as a ratio to its base's: the two are
held together and their timed calls interleaved, so that both see the same
machine load; that ratio is what the paper's plug-in claim (a negligible
overhead) needs. Random weights are used unless a checkpoint is given: the speed of
these networks does not depend on their weights.

Each model runs on its fast path (:mod:`iqprior.fastpath`) at the chosen
``precision`` and, interleaved with it, a copy on the exact path in float32:
the report gives the speed-up over the exact path (median, with min-max of
the timed calls), the largest deviation of the fast path from the exact one
(both float32) and, for ``bf16``/``fp16``, the largest deviation of the
reduced-precision output from the float32 one, so that neither is silent.

The clock and the memory probe are :mod:`.profiling`'s; the report :mod:`.speed_report`'s.
"""
from __future__ import annotations

import copy
import logging
import statistics
from pathlib import Path

import torch

from .profiling import output, peak_memory, ratio_stats, time_once
from .runner import build_model
from .speed_config import SpeedConfig, SpeedResult, SpeedRow
from .speed_report import speed_markdown, write_speed
from .tables import base_of

__all__ = ["SpeedConfig", "SpeedRow", "SpeedResult", "run_speed", "speed_markdown", "write_speed", "peak_memory",
           "time_once"]

log = logging.getLogger("iqprior.bench")


def _variants(model: torch.nn.Module, cfg: SpeedConfig) -> dict[str, torch.nn.Module]:
    """``{"main": the timed model, "exact": its exact float32 copy (when compared)}``."""
    precision = cfg.effective_precision
    has_switches = hasattr(model, "set_exact")
    if has_switches:
        model.set_exact(cfg.exact)
        model.set_precision(precision)
    out = {"main": model}
    fast = has_switches and not cfg.exact and getattr(model, "fast_path", None) is not None \
        and model.fast_path.enabled
    if cfg.compare_exact and has_switches and (fast or precision != "fp32" or cfg.compile):
        twin = copy.deepcopy(model).set_exact(True).set_precision("fp32")
        out["exact"] = twin
    if cfg.compile:
        if not hasattr(model, "compile_for_inference"):
            raise ValueError(f"{type(model).__name__} cannot be compiled here (no compile_for_inference)")
        model.compile_for_inference()
    return out


def _groups(names: tuple[str, ...]) -> list[list[str]]:
    """Models measured together: a base with its "+" variants (interleaved), others alone.

    The pairing is the adapter table's (``adapters.spec(name).base``), not the name.
    """
    seen: set[str] = set()
    out = []
    for n in names:
        if n in seen:
            continue
        base = base_of(n, names) or n
        group = [m for m in (base, *(p for p in names if base_of(p, names) == base)) if m not in seen]
        seen.update(group)
        out.append(group)
    return out


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def run_speed(cfg: SpeedConfig) -> SpeedResult:
    """Measure every (model, size, batch size) of ``cfg``; failures are recorded per row.

    A base model and its "+" variant are held together and their timed calls
    interleaved (A B B A ...), so that both see the same machine load and the
    ratio is fair even on a shared CPU.
    """
    if not cfg.models:
        raise ValueError("no models given: pass --models")
    for v in cfg.sizes + cfg.batch_sizes:
        if v < 1:
            raise ValueError(f"sizes and batch sizes must be >= 1, got {v}")
    device = torch.device(cfg.device)
    rows: list[SpeedRow] = []
    for group in _groups(cfg.models):
        built = {}
        for name in group:
            try:
                model = build_model(name, cfg.checkpoints.get(name), device)
                variants = _variants(model, cfg)
            except Exception as e:  # unknown name, bad checkpoint: failed rows, not a crash
                rows += [SpeedRow(name, s, b, error=_err(e)) for s in cfg.sizes for b in cfg.batch_sizes]
                log.warning("speed: %s not built: %s", name, e)
                continue
            built[name] = (variants, cfg.score if getattr(model, "takes_level", False) else None,
                           sum(p.numel() for p in model.parameters()) / 1e6)
        for s in cfg.sizes:
            for b in cfg.batch_sizes:
                rows += _measure(built, s, b, cfg, device)
        del built
        if device.type == "cuda":
            torch.cuda.empty_cache()
        _ratios(rows)
        if cfg.out is not None:  # after every group, so an interrupted run keeps what it measured
            write_speed(_ordered(rows, cfg.models), cfg, Path(cfg.out))
    rows = _ordered(rows, cfg.models)
    files: dict[str, Path] = {}
    if cfg.out is not None:
        files = write_speed(rows, cfg, Path(cfg.out))
    return SpeedResult(rows, files)


def _ordered(rows: list[SpeedRow], models: tuple[str, ...]) -> list[SpeedRow]:
    return sorted(rows, key=lambda r: (models.index(r.model), r.size, r.batch))


def _path_name(model: torch.nn.Module) -> str:
    path = getattr(model, "active_path", None)
    return "exact" if path is None or not path.enabled else path.describe()


def _measure(built: dict, size: int, batch: int, cfg: SpeedConfig, device: torch.device) -> list[SpeedRow]:
    """Time every variant of every model of a group on one batch, their calls interleaved."""
    from iqprior.fastpath import TOLERANCE, max_abs_deviation

    precision = cfg.effective_precision
    rows = {n: SpeedRow(n, size, batch, params_m=p, precision=precision) for n, (_, _, p) in built.items()}
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    runs: list[tuple[str, str]] = []   # (model, variant) in timing order
    for name, (variants, score, _) in built.items():
        row = rows[name]
        main = variants["main"]
        row.path = _path_name(main)
        try:
            # the warm-up calls give the outputs compared (compile time, if any, is spent here)
            y_main = output(main, x, score)
            if "exact" in variants:
                y_exact = output(variants["exact"], x, score)
                y_fast32 = y_main
                if precision != "fp32":
                    main.set_precision("fp32")
                    y_fast32 = output(main, x, score)
                    main.set_precision(precision)
                    row.max_abs_vs_fp32 = max_abs_deviation(y_main, y_fast32)
                if row.path != "exact":
                    row.max_abs_vs_exact = max_abs_deviation(y_fast32, y_exact)
                    row.within_tolerance = row.max_abs_vs_exact <= TOLERANCE * max(1.0, float(y_exact.abs().max()))
                elif precision != "fp32":
                    row.max_abs_vs_fp32 = max_abs_deviation(y_main, y_exact)
            for _ in range(max(cfg.warmup, 1) - 1):
                for v in variants.values():
                    time_once(v, x, score)
            runs += [(name, k) for k in variants]
        except (RuntimeError, ValueError) as e:  # size not supported, out of memory
            row.error = _err(e)
    times: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    mems: dict[str, list[float]] = {n: [] for n in rows}
    for it in range(max(cfg.iters, 1)):
        for name, key in (runs if it % 2 == 0 else runs[::-1]):
            if rows[name].error:
                continue
            variants, score, _ = built[name]
            try:
                ms, mb = time_once(variants[key], x, score)
            except (RuntimeError, ValueError) as e:
                rows[name].error = _err(e)
                continue
            times[(name, key)].append(ms)
            if mb is not None and key == "main":
                mems[name].append(mb)
    for name, row in rows.items():
        if row.error:
            log.warning("speed: %s at %dx%d batch %d failed: %s", name, size, size, batch, row.error)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        main = times[(name, "main")]
        row.latency_ms = statistics.median(main)
        row.latency_min_ms, row.latency_max_ms = min(main), max(main)
        row.images_per_s = batch / (row.latency_ms / 1000.0)
        row.peak_mem_mb = max(mems[name]) if mems[name] else None
        exact = times.get((name, "exact"))
        if exact and len(exact) == len(main):
            row.exact_latency_ms = statistics.median(exact)
            # per-round ratios (the two calls of a round are adjacent in time): robust to drifting load
            row.speedup_vs_exact = ratio_stats(exact, main)[0]
        log.info("speed: %s %dx%d batch %d: %.1f ms (%s, %s)", name, size, size, batch, row.latency_ms, row.path,
                 precision)
    return list(rows.values())


def _ratios(rows: list[SpeedRow]) -> None:
    names = [r.model for r in rows]
    by = {(r.model, r.size, r.batch): r for r in rows}
    for r in rows:
        base = base_of(r.model, names)
        b = by.get((base, r.size, r.batch)) if base else None
        if b is not None and b.latency_ms and r.latency_ms is not None:
            r.ratio_to_base = r.latency_ms / b.latency_ms


