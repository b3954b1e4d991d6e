"""The benchmarks' one clock and memory probe: synchronised timing, interleaved rounds, peak memory.

``iqprior bench speed`` (:mod:`.speed`) and every ``benchmarks/bench_*.py`` script time with
these functions, so that all of them measure the same way:

- :func:`timed`: seconds of one call, CUDA-synchronised before and after;
- :func:`interleaved`: several calls timed round by round, the order reversed every
  round (A B B A ...), so that adjacent calls see the same machine load; ratios between
  two of them are taken per round (:func:`ratio_stats`), robust to a drifting load;
- :func:`peak_memory`: CUDA's ``max_memory_allocated`` on GPU, on CPU the rise of the
  process's peak resident set size (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``; a sampling thread where that is not possible);
- :func:`time_once`: latency and peak memory of one ``model(x, score=...)`` call.
"""
from __future__ import annotations

import gc
import statistics
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, Mapping, Optional, Sequence

import torch


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
    """Yields a dict that holds ``peak_mb`` (peak rise over the start, MB; ``None`` if unknown) when the block ends.

    On CPU a rise below the start (memory freed inside the block) reads 0.
    """
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
def sync(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA); nothing on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device | str = "cpu") -> float:
    """Seconds one ``fn()`` call takes, CUDA-synchronised before and after (the benchmarks' one clock)."""
    device = torch.device(device)
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int, device: torch.device | str = "cpu",
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of every ``fns[name]()``, ``rounds`` rounds, the calls of a round interleaved.

    ``warmup`` untimed calls of each first; then round ``r`` calls them in order (even ``r``) or in
    reverse order (odd ``r``), so that every pair of functions runs side by side under the same load.
    Returns ``{name: [seconds of round 0, round 1, ...]}``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    order = list(fns)
    for _ in range(max(warmup, 0)):
        for k in order:
            fns[k]()
    times: dict[str, list[float]] = {k: [] for k in order}
    for r in range(rounds):
        for k in (order if r % 2 == 0 else order[::-1]):
            times[k].append(timed(fns[k], device))
    return times


def medians(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """``{name: median}`` of :func:`interleaved`'s result."""
    return {k: statistics.median(v) for k, v in times.items()}


def ratio_stats(num: Sequence[float], den: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)`` of the per-round ratios ``num[r] / den[r]`` (adjacent calls: same load)."""
    if not num or len(num) != len(den):
        raise ValueError(f"need equally many rounds on both sides, got {len(num)} and {len(den)}")
    ratios = sorted(n / d for n, d in zip(num, den))
    return statistics.median(ratios), ratios[0], ratios[-1]


def autocast_for(device: torch.device, amp: bool | str):
    """Autocast for ``amp``: a precision name, or the legacy bool (fp16 on CUDA, bf16 on CPU)."""
    from iqprior.fastpath import autocast

    if isinstance(amp, str):
        return autocast(device, amp)
    if not amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def time_once(model: torch.nn.Module, x: torch.Tensor, score: Optional[int], amp: bool | str = False
              ) -> tuple[float, Optional[float]]:
    """Latency (ms) of one ``model(x, score=score)`` call, synchronised, and the peak memory it needed (MB).

    ``amp``: autocast around the call (adapters with a ``precision`` setting autocast themselves).
    """
    device = x.device
    with torch.inference_mode(), autocast_for(device, amp):
        sync(device)
        with peak_memory(device) as mem:
            t0 = time.perf_counter()
            model(x, score=score)
            sync(device)
            ms = (time.perf_counter() - t0) * 1000.0
    return ms, mem["peak_mb"]


def output(model: torch.nn.Module, x: torch.Tensor, score: Optional[int]) -> torch.Tensor:
    """One call's output, float32 on the CPU, with the global RNG seeded (DifFace draws noise)."""
    torch.manual_seed(0)
    with torch.inference_mode():
        y = model(x, score=score)
    if isinstance(y, (tuple, list)):
        y = y[0]
    return y.float().cpu()
