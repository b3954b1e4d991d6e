"""Fast inference path and reduced precision: the switches every network shares.

A network runs either on its **exact** path (the upstream-identical numerics
our parity tests pin down) or on its **fast** path, which changes only how the
same arithmetic is laid out and may differ by float rounding:

- ``channels_last``: 4-D weights and the input in NHWC memory format, so the
  oneDNN / cuDNN convolutions skip their layout reorders;
- ``attention``: every module with a ``fast_attention`` attribute (the
  spatial and window attention blocks, CodeFormer's Transformer) switches to
  :func:`torch.nn.functional.scaled_dot_product_attention` on contiguous 4-D
  ``(B, heads, N, dim)`` tensors, which selects the fused (flash) kernel
  instead of the explicit ``softmax(q k^T) v`` or the math fallback that 5-D
  or strided inputs get.

A fast path is the default of an adapter only where its output stays within
:data:`TOLERANCE` of the exact one (:func:`within_tolerance`), measured per
model (``iqprior bench speed``; ``docs/experiments/speed.md``).

Precision (``"fp32"``, ``"bf16"``, ``"fp16"``) is autocast around the network,
an opt-in: it moves outputs far more than the fast path does, and the speed
report prints by how much.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "is_channels_last",
    "EXACT",
    "PRECISIONS",
    "TOLERANCE",
    "FastPath",
    "autocast",
    "check_precision",
    "contiguous",
    "max_abs_deviation",
    "set_fast_path",
    "to_channels_last",
    "within_tolerance",
]

TOLERANCE = 1e-4  # max |fast - exact| allowed, times max(1, max |exact|)
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
FAST_ATTENTION = "fast_attention"  # attribute a module reads to choose its attention kernel


@dataclass(frozen=True)
class FastPath:
    """Which fast-path measures a network takes (all ``False`` = the exact path)."""

    channels_last: bool = False
    attention: bool = False

    @property
    def enabled(self) -> bool:
        return self.channels_last or self.attention

    def describe(self) -> str:
        parts = [n for n, on in (("channels_last", self.channels_last), ("SDPA attention", self.attention)) if on]
        return " + ".join(parts) if parts else "exact"


EXACT = FastPath()


def set_fast_path(module: nn.Module, path: FastPath | None) -> None:
    """Put ``module`` (recursively) on ``path``'s fast path, or back on the exact path for ``None``/:data:`EXACT`.

    Converts every 4-D parameter and buffer to channels-last (or back to
    contiguous) in place, so optimisers and ``state_dict`` keep their tensors,
    and sets ``fast_attention`` on the modules that have it.
    """
    path = path or EXACT
    fmt = torch.channels_last if path.channels_last else torch.contiguous_format
    for m in module.modules():
        if hasattr(m, FAST_ATTENTION):
            setattr(m, FAST_ATTENTION, path.attention)
        for t in itertools.chain(m.parameters(recurse=False), m.buffers(recurse=False)):
            if t.dim() == 4 and not t.is_contiguous(memory_format=fmt):
                t.data = t.data.contiguous(memory_format=fmt)


def to_channels_last(obj: Any) -> Any:
    """A 4-D tensor in channels-last memory format; anything else unchanged."""
    if isinstance(obj, torch.Tensor) and obj.dim() == 4:
        return obj.contiguous(memory_format=torch.channels_last)
    return obj


def is_channels_last(x: Any) -> bool:
    """True for a 4-D tensor laid out channels-last (and not also plain contiguous)."""
    return (isinstance(x, torch.Tensor) and x.dim() == 4 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last))


def contiguous(obj: Any, dtype: torch.dtype | None = None, channels_last: bool = False) -> Any:
    """Tensors in ``obj`` (a tensor, tuple or named tuple of them) made contiguous — 4-D ones
    channels-last if ``channels_last`` — and cast to ``dtype`` if floating.

    The fast path hands outputs back in the layout of the caller's input, which is what the
    exact path gives too: layouts matter where noise is drawn ``randn_like`` (DifFace's sampler).
    """
    if isinstance(obj, torch.Tensor):
        if dtype is not None and obj.is_floating_point():
            obj = obj.to(dtype)
        if channels_last and obj.dim() == 4:
            return obj.contiguous(memory_format=torch.channels_last)
        return obj.contiguous()
    if isinstance(obj, tuple):
        items = [contiguous(o, dtype, channels_last) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return obj


def max_abs_deviation(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b|`` in float64."""
    return float((a.double() - b.double()).abs().max())


def within_tolerance(fast: torch.Tensor, exact: torch.Tensor, tol: float = TOLERANCE) -> bool:
    """``max |fast - exact| <= tol * max(1, max |exact|)`` (the fast path's acceptance rule)."""
    scale = max(1.0, float(exact.detach().abs().max()))
    return max_abs_deviation(fast.detach(), exact.detach()) <= tol * scale


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


def autocast(device: torch.device | str, precision: str = "fp32"):
    """``torch.autocast`` to ``precision``'s dtype on ``device``; a null context for ``"fp32"``."""
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
