"""Building a network described by a file, bounded by what the file holds.

A model file does not only hold weights: its key names and shapes (``auto``:
spandrel reads the number of blocks from the largest key index, the width from
a shape) and a saved folder's ``config.json`` options (a width, a
``condition_shape``) size the network that is built *before* any weight is
copied into it. A 7 KB file can so ask for 1.48 G parameters, a 384-byte one
for 300,000 modules.

:func:`bounded_build` watches every tensor the block creates (torch's factory
functions — ``empty``, ``zeros``, ``rand``, ``arange``... and the ``*_like`` /
``new_*`` ones — through a :class:`torch.overrides.TorchFunctionMode`). Each
request is sized first on the ``meta`` device (no memory), then counted; the
block is refused with one :class:`iqprior.checkpoint.CheckpointError` line,
**before** the allocation happens, when

- the elements created exceed twice what the file holds plus
  :data:`SLACK_ELEMENTS` (networks allocate their parameters, a few buffers and
  small temporaries while they are built), or :data:`MAX_ELEMENTS` in all;
- the tensors created exceed four per tensor in the file plus
  :data:`SLACK_TENSORS` (a network of 300,000 modules from a 20-tensor file).

The file's own counts come from the tensors already read (``.pth``) or from a
safetensors header alone (:func:`safetensors_counts`; no data read).
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Iterator, Optional

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["bounded_build", "safetensors_counts", "state_counts", "MAX_ELEMENTS", "SLACK_ELEMENTS", "SLACK_TENSORS"]

MAX_ELEMENTS = 4 << 30     # 4 G elements (16 GB of float32): no network iqprior builds from a file is larger
SLACK_ELEMENTS = 16 << 20  # 16 M elements (64 MB float32) of buffers and temporaries beyond 2x the file
SLACK_TENSORS = 2000

_FACTORIES = ("empty", "empty_strided", "empty_permuted", "zeros", "ones", "full", "rand", "randn", "randint",
              "randperm", "arange", "range", "linspace", "logspace", "eye", "tensor", "as_tensor", "asarray",
              "scalar_tensor", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
              "randint_like")
_METHODS = ("new_empty", "new_zeros", "new_ones", "new_full", "new_tensor", "new_empty_strided")


def _watched() -> frozenset:
    funcs = [getattr(torch, n) for n in _FACTORIES if hasattr(torch, n)]
    funcs += [getattr(torch.Tensor, n) for n in _METHODS if hasattr(torch.Tensor, n)]
    return frozenset(funcs)


def state_counts(state: Any) -> tuple[int, int]:
    """``(elements, tensors)`` of a state dict's tensor values."""
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    return sum(int(v.numel()) for v in tensors), len(tensors)


def safetensors_counts(path: str | os.PathLike) -> tuple[int, int]:
    """``(elements, tensors)`` of a safetensors file, from its header alone (no tensor data is read)."""
    from safetensors import safe_open

    elements = tensors = 0
    with safe_open(str(path), "pt") as f:
        for key in f.keys():  # noqa: SIM118 -- safe_open is not iterable
            elements += math.prod(f.get_slice(key).get_shape())
            tensors += 1
    return elements, tensors


class _Budget(TorchFunctionMode):
    def __init__(self, max_elements: int, max_tensors: int, source: str, file_elements: int, file_tensors: int):
        super().__init__()
        self.max_elements, self.max_tensors = max_elements, max_tensors
        self.source, self.file_elements, self.file_tensors = source, file_elements, file_tensors
        self.elements = self.tensors = 0
        self.watched = _watched()

    def _refuse(self, what: str) -> None:
        from .checkpoint import CheckpointError

        raise CheckpointError(
            f"{self.source}: the network it describes would create {what}, more than the file's "
            f"{self.file_tensors} tensors / {self.file_elements:,} elements allow; refused before allocating "
            f"(a modified file or config.json?)")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.watched:
            self.tensors += 1
            if self.tensors > self.max_tensors:
                self._refuse(f"more than {self.max_tensors:,} tensors")
            try:
                sized = func(*args, **{**{k: v for k, v in kwargs.items() if k != "pin_memory"}, "device": "meta"})
                n = int(sized.numel()) if isinstance(sized, torch.Tensor) else 0
            except Exception:  # noqa: BLE001 -- cannot be sized on meta: the real call decides
                n = 0
            self.elements += n
            if self.elements > self.max_elements:
                self._refuse(f"{self.elements:,} elements (one request of {n:,})")
        return func(*args, **kwargs)


@contextlib.contextmanager
def bounded_build(file_elements: int, file_tensors: int, source: str,
                  max_elements: Optional[int] = None) -> Iterator[None]:
    """Refuse (``CheckpointError``) any tensor creation in the block beyond what a file of
    ``file_elements`` elements in ``file_tensors`` tensors can describe (see the module docstring)."""
    cap = min(2 * int(file_elements) + SLACK_ELEMENTS, MAX_ELEMENTS if max_elements is None else max_elements)
    with _Budget(cap, 4 * int(file_tensors) + SLACK_TENSORS, source, int(file_elements), int(file_tensors)):
        yield
