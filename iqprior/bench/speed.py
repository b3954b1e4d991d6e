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
"""
from __future__ import annotations

import gc
import json
import logging
import os
import statistics
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Optional

import torch

from .runner import build_model
from .tables import base_of

log = logging.getLogger("iqprior.bench")


@dataclass(frozen=True)
class SpeedConfig:
    models: tuple[str, ...]
    sizes: tuple[int, ...] = (512,)
    batch_sizes: tuple[int, ...] = (1, 4, 8)
    device: str = "cpu"
    amp: bool = False
    warmup: int = 1
    iters: int = 3
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    score: int = 9
    out: Optional[Path] = None


@dataclass
class SpeedRow:
    model: str
    size: int
    batch: int
    latency_ms: Optional[float] = None        # median time of one forward call on the batch
    images_per_s: Optional[float] = None
    peak_mem_mb: Optional[float] = None
    ratio_to_base: Optional[float] = None     # "+" rows: latency / base latency
    params_m: Optional[float] = None
    error: str = ""


@dataclass
class SpeedResult:
    rows: list[SpeedRow]
    files: dict[str, Path]


# -- peak memory ----------------------------------------------------------------------------
def _proc_kb(field_name: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _trim() -> None:
    """Return freed heap memory to the OS (glibc), so the RSS rise counts what a call needs."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict]:
    """Yields a dict that holds ``peak_mb`` (peak rise over the start) when the block ends."""
    box: dict = {"peak_mb": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        yield box
        torch.cuda.synchronize(device)
        box["peak_mb"] = (torch.cuda.max_memory_allocated(device) - start) / 2**20
        return
    _trim()
    start = _proc_kb("VmRSS")
    if start is not None and _reset_peak_rss():
        yield box
        peak = _proc_kb("VmHWM")
        box["peak_mb"] = None if peak is None else max(peak - start, 0) / 1024
        return
    # fallback: sample RSS in a thread
    stop = threading.Event()
    samples = [start or 0]

    def sample():
        while not stop.wait(0.005):
            v = _proc_kb("VmRSS")
            if v is not None:
                samples.append(v)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield box
    finally:
        stop.set()
        t.join()
        if start is not None:
            box["peak_mb"] = max(max(samples) - start, 0) / 1024


# -- timing ---------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device | str = "cpu") -> float:
    """Seconds one ``fn()`` call takes, CUDA-synchronised before and after (the benchmarks' one clock)."""
    device = torch.device(device)
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def time_once(model: torch.nn.Module, x: torch.Tensor, score: Optional[int], amp: bool
              ) -> tuple[float, Optional[float]]:
    """Latency (ms) of one ``model(x)`` call, synchronised, and the peak memory it needed (MB)."""
    device = x.device
    with torch.inference_mode(), _autocast(device, amp):
        _sync(device)
        with peak_memory(device) as mem:
            t0 = time.perf_counter()
            model(x, score=score)
            _sync(device)
            ms = (time.perf_counter() - t0) * 1000.0
    return ms, mem["peak_mb"]


def _groups(names: tuple[str, ...]) -> list[list[str]]:
    """Models measured together: a base with its "+" variant (interleaved), others alone."""
    seen: set[str] = set()
    out = []
    for n in names:
        if n in seen:
            continue
        base = n[:-1] if n.endswith("+") and n[:-1] in names else n
        group = [m for m in (base, base + "+") if m in names and m not in seen] if base + "+" in names else [n]
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
            except Exception as e:  # unknown name, bad checkpoint: failed rows, not a crash
                rows += [SpeedRow(name, s, b, error=_err(e)) for s in cfg.sizes for b in cfg.batch_sizes]
                log.warning("speed: %s not built: %s", name, e)
                continue
            built[name] = (model, cfg.score if getattr(model, "is_conditioned", False) else None,
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


def _measure(built: dict, size: int, batch: int, cfg: SpeedConfig, device: torch.device) -> list[SpeedRow]:
    rows = {n: SpeedRow(n, size, batch, params_m=p) for n, (_, _, p) in built.items()}
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    alive = []
    for name, (model, score, _) in built.items():
        try:
            for _ in range(max(cfg.warmup, 0)):
                time_once(model, x, score, cfg.amp)
            alive.append(name)
        except (RuntimeError, ValueError) as e:  # size not supported, out of memory
            rows[name].error = _err(e)
    times: dict[str, list[float]] = {n: [] for n in alive}
    mems: dict[str, list[float]] = {n: [] for n in alive}
    for it in range(max(cfg.iters, 1)):
        for name in (alive if it % 2 == 0 else alive[::-1]):
            model, score, _ = built[name]
            try:
                ms, mb = time_once(model, x, score, cfg.amp)
            except (RuntimeError, ValueError) as e:
                rows[name].error = _err(e)
                continue
            times[name].append(ms)
            if mb is not None:
                mems[name].append(mb)
        alive = [n for n in alive if not rows[n].error]
    for name, row in rows.items():
        if row.error:
            log.warning("speed: %s at %dx%d batch %d failed: %s", name, size, size, batch, row.error)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        row.latency_ms = statistics.median(times[name])
        row.images_per_s = batch / (row.latency_ms / 1000.0)
        row.peak_mem_mb = max(mems[name]) if mems[name] else None
        log.info("speed: %s %dx%d batch %d: %.1f ms", name, size, size, batch, row.latency_ms)
    return list(rows.values())


def _ratios(rows: list[SpeedRow]) -> None:
    names = [r.model for r in rows]
    by = {(r.model, r.size, r.batch): r for r in rows}
    for r in rows:
        base = base_of(r.model, names)
        b = by.get((base, r.size, r.batch)) if base else None
        if b is not None and b.latency_ms and r.latency_ms is not None:
            r.ratio_to_base = r.latency_ms / b.latency_ms


def _f(v: Optional[float], fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def speed_markdown(rows: list[SpeedRow], cfg: SpeedConfig) -> str:
    dev = cfg.device
    if torch.device(dev).type == "cuda" and torch.cuda.is_available():
        dev = torch.cuda.get_device_name(torch.device(dev))
    else:
        dev = f"cpu ({torch.get_num_threads()} threads)"
    mem = "CUDA max allocated" if torch.device(cfg.device).type == "cuda" else "peak RSS rise"
    lines = [f"### Forward speed on {dev}{' with AMP' if cfg.amp else ''}", "",
             f"| Model | Size | Batch | Latency (ms) | Images/s | vs base | Peak memory (MB, {mem}) | Params (M) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.model} | {r.size} | {r.batch} | failed: {r.error[:120]} | | | | |")
            continue
        lines.append(f"| {r.model} | {r.size} | {r.batch} | {_f(r.latency_ms, '.1f')} | {_f(r.images_per_s, '.2f')} | "
                     f"{_f(r.ratio_to_base, '.3f')}{'x' if r.ratio_to_base is not None else ''} | "
                     f"{_f(r.peak_mem_mb, '.0f')} | {_f(r.params_m, '.2f')} |")
    lines += ["", f"Median of {cfg.iters} timed calls after {cfg.warmup} warm-up call(s); "
              "\"vs base\": latency of a \"+\" model over its base's, their calls interleaved in the same run.",
              "Weights: random unless --checkpoints names a file (timing does not depend on them): "
              + (", ".join(f"{m}={c}" for m, c in cfg.checkpoints.items()) or "all models RANDOM") + "."]
    return "\n".join(lines) + "\n"


def write_speed(rows: list[SpeedRow], cfg: SpeedConfig, out: Path) -> dict[str, Path]:
    from iqprior.io import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "speed.json", "markdown": out / "speed.md"}
    env = {"torch": torch.__version__, "device": cfg.device, "threads": torch.get_num_threads(),
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "cpu_count": os.cpu_count()}
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    atomic_write_text(files["json"], json.dumps({"config": config, "environment": env,
                                                 "rows": [asdict(r) for r in rows]}, indent=1))
    atomic_write_text(files["markdown"], speed_markdown(rows, cfg))
    return files
