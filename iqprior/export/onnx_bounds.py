"""Bounds on an ONNX file iqprior did not write: its metadata, and what running it may cost.

An ONNX file is a program. Its ``iqprior.*`` metadata and fixed input sizes
decide how large an image the runner builds (padding to ``size_requirements``,
resizing to ``native_size``), and its graph decides what onnxruntime computes
(a ``Loop`` of 2**62 iterations, a ``ConstantOfShape`` of 2**33 floats).

- :func:`checked_metadata` parses every ``iqprior.*`` field with a type and a
  range; sizes are bounded by the image pixel cap (:data:`iqprior.io.MAX_PIXELS`),
  so a 200-byte file cannot make an 8x8 image ask for 43 GB. A malformed field
  is one ``ValueError`` line naming it.
- :class:`RunBound` runs the session with a **time** bound (onnxruntime's
  ``RunOptions.terminate``, set by a timer: it stops between kernels and
  between a ``Loop``'s iterations) and a **memory** bound (``RLIMIT_AS``
  lowered to the process's current size plus a budget for the duration of the
  call, on POSIX systems): beyond them, one ``ValueError`` line naming the
  bound and the environment variable that changes it. Loops are not refused:
  they are stopped by the time bound.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from typing import Any, Iterator, Mapping, Optional

from ..io import MAX_PIXELS
from ..printable import printable

__all__ = ["checked_metadata", "check_input_size", "RunBound", "ONNX_SECONDS", "ONNX_MEMORY_MB", "MAX_SCALE"]

ONNX_SECONDS = "IQPRIOR_ONNX_SECONDS"      # time bound of one run (default 600 s)
ONNX_MEMORY_MB = "IQPRIOR_ONNX_MEMORY_MB"  # address space one run may add (default 16384 MB)
MAX_SCALE = 16
MAX_LEVELS = 1000
MAX_CONTROLS = 16
MAX_FIELD_CHARS = 4096
MAX_SIDE = int(math.isqrt(MAX_PIXELS))     # a square of this side is the pixel cap


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"metadata iqprior.{field} = {printable(value, 60)!r} is not an integer") from None
    if not (math.isfinite(f) and f.is_integer() and lo <= f <= hi):
        raise ValueError(f"metadata iqprior.{field} = {printable(value, 60)!r} is not an integer in {lo}..{hi}")
    return int(f)


def _json(text: str, field: str) -> Any:
    if len(text) > MAX_FIELD_CHARS:
        raise ValueError(f"metadata iqprior.{field} is {len(text)} characters long (at most {MAX_FIELD_CHARS})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"metadata iqprior.{field} = {printable(text, 60)!r} is not valid JSON") from None


def checked_metadata(meta: Mapping[str, str]) -> dict[str, Any]:
    """The ``iqprior.*`` fields the runner uses, parsed and range-checked (missing ones are absent).

    ``task`` (``"face"``/``"image"``), ``native_size`` (side² within the pixel cap), ``scale``
    (1..:data:`MAX_SCALE`), ``levels`` (0..1000), ``controls`` (``{name: finite number}``, at most 16),
    ``size_requirements`` (``[minimum, multiple, square]``, each side² within the pixel cap),
    ``adapter`` (printable, at most 200 characters), ``random_weights`` (bool).
    """
    out: dict[str, Any] = {}
    if "task" in meta:
        if meta["task"] not in ("face", "image"):
            raise ValueError(f"metadata iqprior.task = {printable(meta['task'], 60)!r} is not 'face' or 'image'")
        out["task"] = meta["task"]
    if meta.get("native_size"):
        out["native_size"] = _int(meta["native_size"], "native_size", 1, MAX_SIDE)
    if "scale" in meta:
        out["scale"] = _int(meta["scale"], "scale", 1, MAX_SCALE)
    if "levels" in meta:
        out["levels"] = _int(meta["levels"], "levels", 0, MAX_LEVELS)
    if "controls" in meta:
        controls = _json(meta["controls"], "controls")
        if not (isinstance(controls, dict) and len(controls) <= MAX_CONTROLS and all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) for k, v in controls.items())):
            raise ValueError(f"metadata iqprior.controls = {printable(meta['controls'], 60)!r} is not a mapping of "
                             f"at most {MAX_CONTROLS} names to finite numbers")
        out["controls"] = {k: float(v) for k, v in controls.items()}
    if "size_requirements" in meta:
        req = _json(meta["size_requirements"], "size_requirements")
        if not (isinstance(req, list) and len(req) == 3 and isinstance(req[2], bool)):
            raise ValueError(f"metadata iqprior.size_requirements = {printable(meta['size_requirements'], 60)!r} is "
                             f"not [minimum, multiple, square]")
        out["size_requirements"] = (_int(req[0], "size_requirements minimum", 0, MAX_SIDE),
                                    _int(req[1], "size_requirements multiple", 1, MAX_SIDE), req[2])
    if "adapter" in meta:
        out["adapter"] = printable(meta["adapter"], 200)
    out["random_weights"] = meta.get("random_weights") == "true"
    return out


def check_input_size(dims: Any, source: str) -> Optional[tuple[int, int]]:
    """``(H, W)`` of a fixed-size image input, within the pixel cap; ``None`` for symbolic dims."""
    h, w = dims[2], dims[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        return None
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise ValueError(f"{source} takes a fixed {h}x{w} input, outside 1 pixel..the {MAX_PIXELS / 1e6:.0f} MP cap")
    return h, w


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{name}={raw!r} must be > 0")
    return value


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RunBound:
    """Time and memory bounds of one onnxruntime call (defaults from :data:`ONNX_SECONDS`,
    :data:`ONNX_MEMORY_MB`); ``with bound.memory(): ...`` and ``bound.run(session, outputs, feeds)``."""

    def __init__(self, seconds: Optional[float] = None, memory_mb: Optional[float] = None):
        self.seconds = seconds if seconds is not None else _env_number(ONNX_SECONDS, 600.0)
        self.memory_mb = memory_mb if memory_mb is not None else _env_number(ONNX_MEMORY_MB, 16384.0)

    @contextlib.contextmanager
    def memory(self) -> Iterator[None]:
        """Lower ``RLIMIT_AS`` to the current address space + the budget while the block runs (POSIX)."""
        try:
            import resource
        except ImportError:  # not POSIX: the time bound only
            yield
            return
        vm = _vm_bytes()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = vm + int(self.memory_mb * 2**20)
        if not vm or (soft != resource.RLIM_INFINITY and soft <= cap):
            yield
            return
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        with _AS_LOCK:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
            try:
                yield
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    def run(self, session: Any, outputs: list[str], feeds: dict[str, Any], source: str) -> list[Any]:
        """``session.run`` within both bounds; a stopped or failed run is one ``ValueError`` line."""
        import onnxruntime as ort

        options = ort.RunOptions()
        options.log_severity_level = 4
        timer = threading.Timer(self.seconds, lambda: setattr(options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            with self.memory():
                return session.run(outputs, feeds, options)
        except Exception as e:  # noqa: BLE001 -- onnxruntime raises its own error types
            text = str(e)
            if "terminate flag" in text:
                raise ValueError(f"{source} ran longer than {self.seconds:g} s and was stopped (set {ONNX_SECONDS} "
                                 f"for a longer bound)") from None
            if "alloc" in text.lower() or isinstance(e, MemoryError):
                raise ValueError(f"{source} needed more memory than its run may use ({self.memory_mb:g} MB, or the "
                                 f"process's own limit) and was stopped (set {ONNX_MEMORY_MB} for a larger bound)"
                                 ) from None
            first = (text.strip().splitlines() or [type(e).__name__])[0][:300]
            raise ValueError(f"{source} failed in onnxruntime: {printable(first, 300)}") from None
        finally:
            timer.cancel()


_AS_LOCK = threading.Lock()
