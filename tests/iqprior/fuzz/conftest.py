"""Property-based fuzzing of the readers of untrusted files (Hypothesis).

The default suite runs a small, fixed-seed budget (``derandomize=True``);
``make fuzz`` raises it with ``IQPRIOR_FUZZ_EXAMPLES``. Every case must end in a
result or one clear error within :data:`SECONDS` seconds and with the process's
peak memory growing by less than :data:`MEMORY_MB` MB (a hang or a bomb fails).
"""
from __future__ import annotations

import contextlib
import os
import resource
import signal

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("IQPRIOR_FUZZ_EXAMPLES", "20"))
SECONDS = int(os.environ.get("IQPRIOR_FUZZ_SECONDS", "20"))
MEMORY_MB = int(os.environ.get("IQPRIOR_FUZZ_MEMORY_MB", "1024"))

settings.register_profile(
    "iqprior-fuzz", derandomize=True, max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@contextlib.contextmanager
def _bounded(what: str = "case"):
    def alarm(signum, frame):
        raise TimeoutError(f"{what} did not finish in {SECONDS} s")

    before = _peak_mb()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    grew = _peak_mb() - before
    assert grew < MEMORY_MB, f"{what} raised the peak memory by {grew:.0f} MB"


@pytest.fixture
def bounded():
    """``with bounded("what"): ...`` fails on a hang (SIGALRM) or a large peak-memory growth."""
    return _bounded
