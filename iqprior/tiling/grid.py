"""Where the tiles of an image go, and how neighbouring tiles are blended (one axis at a time).

Along an axis of length ``L``, tiles of side at most ``T`` (the model's input) overlap their neighbours by
at least ``M`` pixels; every tile has the same size (as few tiles as ``T`` allows, spread evenly rather
than the last one cut short), a multiple of the model's size multiple (with ``align``, tiles start on a
window boundary and the last one runs to the end instead). The seam between two
tiles is the centre of their overlap; each tile contributes to its own span plus ``h = M // 4`` pixels
past each seam, where the two tiles are cross-faded by a linear ramp. A contributed pixel is therefore at
least ``M / 2 - h = M / 4`` pixels from its tile's edge: a convolutional model whose receptive field
radius is at most that gives the untiled result exactly (up to float rounding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Axis", "axis_layout", "ramp"]


@dataclass(frozen=True)
class Axis:
    """The tiles along one axis: tile ``i`` covers input pixels ``[starts[i], ends[i])``; ``seams[i]`` is the
    seam between tile ``i`` and ``i + 1``; ``half`` the half-width of the cross-fade band around each seam."""

    length: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    seams: tuple[int, ...]
    half: int

    def span(self, i: int) -> tuple[int, int]:
        """Input pixels ``[a, b)`` tile ``i`` contributes to (its cross-fade bands included)."""
        a = 0 if i == 0 else self.seams[i - 1] - self.half
        b = self.length if i == len(self.starts) - 1 else self.seams[i] + self.half
        return a, b

    def __len__(self) -> int:
        return len(self.starts)


def axis_layout(length: int, tile: int, overlap: int, align: int = 1, multiple: int = 1) -> Axis:
    """Tiles of side at most ``tile`` covering ``length``, neighbours sharing at least ``overlap`` pixels.

    As few tiles as ``tile`` allows, all of one side (a multiple of ``multiple``), spread evenly: the
    pixels processed are about ``length + (n - 1) · overlap``, as with tiles cut short at the border.
    ``align``: every tile starts at a multiple of it (a transformer's window size: the tiles' windows are
    then the whole image's); the last tile then runs to the end (up to ``align - 1`` pixels longer).
    """
    align, multiple = max(1, int(align)), max(1, int(multiple))
    if length <= tile:
        return Axis(length, (0,), (length,), (), 0)
    if not 0 <= overlap < tile - align:
        raise ValueError(f"the tile overlap must lie in [0, {tile - align}) for tiles of {tile}, got {overlap}")
    slack = overlap + align  # what rounding the starts (to integers, to ``align``) may take off the overlap
    n = max(2, math.ceil((length - tile) / (tile - slack)) + 1)
    size = -(-(length + (n - 1) * slack) // n)
    size = min(tile, -(-size // multiple) * multiple)
    starts = tuple(round(i * (length - size) / (n - 1)) // align * align for i in range(n))
    ends = tuple(s + size for s in starts[:-1]) + (length,)
    seams = tuple((starts[i + 1] + ends[i]) // 2 for i in range(n - 1))
    # the band must stay inside both tiles' shared part and inside every tile's own span
    shared = min(ends[i] - starts[i + 1] for i in range(n - 1))
    bounds = (0,) + seams + (length,)
    widest = min(bounds[i + 1] - bounds[i] for i in range(n)) // 2
    return Axis(length, starts, ends, seams, max(0, min(overlap // 4, shared // 4, widest)))


def ramp(width: int, rising: bool, device=None) -> torch.Tensor:
    """Cross-fade weights over a band of ``width`` output pixels: rising 0 -> 1 (the tile after the seam)
    or falling; a rising and a falling ramp sum to 1 at every pixel."""
    w = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / max(width, 1)
    return w if rising else 1 - w
