"""The report of ``iqprior bench speed`` (:mod:`.speed`): ``speed.md`` and ``speed.json``."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from .speed_config import SpeedConfig, SpeedRow


def _f(v: Optional[float], fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _e(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:.1e}"


def speed_markdown(rows: list[SpeedRow], cfg: SpeedConfig) -> str:
    from iqprior.fastpath import TOLERANCE

    dev = cfg.device
    if torch.device(dev).type == "cuda" and torch.cuda.is_available():
        dev = torch.cuda.get_device_name(torch.device(dev))
    else:
        dev = f"cpu ({torch.get_num_threads()} threads)"
    mem = "CUDA max allocated" if torch.device(cfg.device).type == "cuda" else "peak RSS rise"
    precision = cfg.effective_precision
    lines = [f"### Forward speed on {dev}, {precision}{', torch.compile' if cfg.compile else ''}", "",
             "| Model | Size | Batch | Path | Latency (ms): median (min–max) | Exact fp32 (ms) | Speed-up vs exact | "
             f"Images/s | Peak memory (MB, {mem}) | max abs Δ fast vs exact | max abs Δ {precision} vs fp32 | "
             "vs base | Params (M) |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.model} | {r.size} | {r.batch} | {r.path} | failed: {r.error[:120]} "
                         "| | | | | | | | |")
            continue
        lat = f"{_f(r.latency_ms, '.1f')} ({_f(r.latency_min_ms, '.1f')}–{_f(r.latency_max_ms, '.1f')})"
        tol = "" if r.within_tolerance is None else (" ✓" if r.within_tolerance else " ✗ over tolerance")
        lines.append(f"| {r.model} | {r.size} | {r.batch} | {r.path} | {lat} | {_f(r.exact_latency_ms, '.1f')} | "
                     f"{_f(r.speedup_vs_exact, '.2f')}{'x' if r.speedup_vs_exact is not None else ''} | "
                     f"{_f(r.images_per_s, '.2f')} | {_f(r.peak_mem_mb, '.0f')} | {_e(r.max_abs_vs_exact)}{tol} | "
                     f"{_e(r.max_abs_vs_fp32) if precision != 'fp32' else 'n/a (fp32)'} | "
                     f"{_f(r.ratio_to_base, '.3f')}{'x' if r.ratio_to_base is not None else ''} | "
                     f"{_f(r.params_m, '.2f')} |")
    lines += ["", f"Median (min–max) of {cfg.iters} timed calls after the warm-up; the exact float32 copy's calls "
              "are interleaved with the timed model's (same machine load). \"max abs Δ fast vs exact\": both in "
              f"float32, ✓ when within {TOLERANCE:g} × max(1, max |exact|). \"vs base\": latency of a \"+\" "
              "model over its base's, their calls interleaved in the same run.",
              "Weights: random unless --checkpoints names a file (timing does not depend on them): "
              + (", ".join(f"{m}={c}" for m, c in cfg.checkpoints.items()) or "all models RANDOM") + "."]
    if precision != "fp32":
        lines.append(f"Reduced precision ({precision} autocast) moves the outputs by the amount shown; it is "
                     "never a default.")
    return "\n".join(lines) + "\n"


def write_speed(rows: list[SpeedRow], cfg: SpeedConfig, out: Path) -> dict[str, Path]:
    from iqprior.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "speed.json", "markdown": out / "speed.md"}
    env = {"torch": torch.version.__version__, "device": cfg.device, "threads": torch.get_num_threads(),
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "cpu_count": os.cpu_count()}
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    atomic_write_text(files["json"], json.dumps({"config": config, "environment": env,
                                                 "rows": [asdict(r) for r in rows]}, indent=1))
    atomic_write_text(files["markdown"], speed_markdown(rows, cfg))
    return files
