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


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def _address_space_cap():
    """Lower RLIMIT_AS to the current size + MEMORY_MB for the case: a bomb is a MemoryError, not the OOM killer."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = _vm_bytes()
    if not vm:
        yield
        return
    cap = vm + MEMORY_MB * 2**20
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def _bounded(what: str = "case"):
    def alarm(signum, frame):
        raise TimeoutError(f"{what} did not finish in {SECONDS} s")

    before = _peak_mb()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(SECONDS)
    try:
        with _address_space_cap():
            yield
    except MemoryError:
        raise AssertionError(f"{what} tried to allocate more than {MEMORY_MB} MB") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    grew = _peak_mb() - before
    assert grew < MEMORY_MB, f"{what} raised the peak memory by {grew:.0f} MB"


@pytest.fixture
def bounded():
    """``with bounded("what"): ...`` fails on a hang (SIGALRM), a MemoryError under the lowered address-space
    cap, or a large peak-memory growth. A reader that wraps a MemoryError into its own error is caught by
    the tests, which refuse messages naming one."""
    return _bounded
