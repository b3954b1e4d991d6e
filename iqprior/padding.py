"""Size requirements of a network (minimum side, multiple-of, square) met by padding, then cropped back.

Used by the ``auto`` adapters (spandrel's descriptor states the requirement) and by the ONNX runner,
which pads before onnxruntime: a traced graph keeps the pad amounts of the size it was traced at,
so the padding of a dynamic-size export has to happen outside the graph.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["pad_to", "needs_padding"]


def needs_padding(requirements: Sequence) -> bool:
    """Whether ``(minimum, multiple, square)`` asks for anything at all."""
    minimum, multiple, square = requirements
    return int(minimum) > 0 or int(multiple) > 1 or bool(square)


def padded_size(h: int, w: int, minimum: int, multiple: int, square: bool) -> tuple[int, int]:
    """The smallest ``(H, W) >= (h, w)`` that meets the requirements."""
    def up(v: int) -> int:
        v = max(v, minimum)
        return -(-v // multiple) * multiple
    th, tw = up(h), up(w)
    if square:
        th = tw = max(th, tw)
    return th, tw


def pad_to(x: torch.Tensor, minimum: int, multiple: int, square: bool) -> torch.Tensor:
    """Pad ``x`` (..., H, W) on the right/bottom as spandrel does (reflect as far as it can, then replicate)."""
    h, w = x.shape[-2:]
    th, tw = padded_size(h, w, minimum, multiple, square)
    ph, pw = th - h, tw - w
    if not (ph or pw):
        return x
    rw, rh = min(pw, w - 1), min(ph, h - 1)
    x = F.pad(x, (0, rw, 0, rh), mode="reflect")
    return F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate") if (pw - rw or ph - rh) else x
