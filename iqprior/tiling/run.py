"""Run an image model tile by tile into a uint8 canvas, in memory bounded by the input and output themselves.

The image stays ``uint8`` (``H, W, 3``) and the result is written into a ``uint8`` canvas as tiles finish;
the only float buffers are one tile (its input, output and weights) and the cross-fade bands: the band
under the current row of tiles (``3 × 2h·s × W·s`` floats, ``h`` = overlap / 4, ``s`` = scale) and the
band right of the current tile. Nothing full-size is ever float. See :mod:`iqprior.tiling.grid` for the
layout and when the result equals the untiled one.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch

from .grid import Axis, axis_layout, ramp

__all__ = ["restore_tiled", "tile_multiple", "tile_align", "DEFAULT_OVERLAP"]

DEFAULT_OVERLAP = 32


def tile_multiple(model: Any) -> int:
    """The size multiple every tile should meet: the model's ``size_requirements`` (``auto``, ONNX) or its
    ``size_multiple`` (ported models that resize to a multiple), else 1."""
    req = getattr(model, "size_requirements", None)
    if req is not None:
        return max(1, int(req[1]))
    return max(1, int(getattr(model, "size_multiple", 1) or 1))


def tile_align(model: Any) -> int:
    """Where tiles start: a multiple of the network's attention window (``net.window_size``, e.g. SwinIR,
    HAT), so that each tile's windows are the whole image's; 1 for convolutional models."""
    net = model
    while getattr(net, "net", None) is None and getattr(net, "model", None) is not None:
        net = net.model
    w = getattr(getattr(net, "net", None), "window_size", None)
    w = w[0] if isinstance(w, (tuple, list)) and w else w
    return int(w) if isinstance(w, int) and w > 1 else 1


def _to_uint8(y: torch.Tensor) -> np.ndarray:
    """``(3, h, w)`` float -> ``(h, w, 3)`` uint8 (clamped, rounded); a non-finite value is an error."""
    if not torch.isfinite(y).all():
        raise ValueError("the model's output has NaN/Inf values (nothing written)")
    return (y.clamp(0, 1) * 255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _scale_of(x: torch.Tensor, y: torch.Tensor) -> int:
    (h, w), (oh, ow) = x.shape[-2:], y.shape[-2:]
    s = oh // h
    if s < 1 or oh != s * h or ow != s * w:
        raise ValueError(f"tiling needs an integer scale: a {h}x{w} tile gave {oh}x{ow}")
    return s


@torch.no_grad()
def restore_tiled(model: Callable[..., torch.Tensor], image: np.ndarray, tile: int,
                  overlap: int = DEFAULT_OVERLAP, score: Any = None, device: torch.device | str = "cpu",
                  multiple: Optional[int] = None, align: Optional[int] = None, order: str = "rgb",
                  progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """Restore ``image`` (``(H, W, 3)`` uint8, channels in ``order``: "rgb" or "bgr") tile by tile.

    ``model(x, score=score)``: ``(1, 3, t, t)`` RGB in [0, 1] -> ``(1, 3, s·t, s·t)`` (any integer scale
    ``s``, found from the first tile). ``tile``: the largest side of a tile the model sees; ``overlap``:
    pixels neighbouring tiles share at least. ``multiple``: tiles are multiples of it (the model's size
    multiple, so none needs padding); ``align``: tiles start at multiples of it (a transformer's window
    size); both default to what the model states (:func:`tile_multiple`, :func:`tile_align`). Returns the
    ``(s·H, s·W, 3)`` uint8 result in the same channel order; ``progress(done, total)`` is called per tile.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"restore_tiled takes an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if order not in ("rgb", "bgr"):
        raise ValueError(f"order must be 'rgb' or 'bgr', got {order!r}")
    multiple = tile_multiple(model) if multiple is None else max(1, int(multiple))
    align = tile_align(model) if align is None else max(1, int(align))
    tile = tile // multiple * multiple
    if tile < max(2 * overlap, 16, multiple):
        raise ValueError(f"--tile must be at least twice the overlap (and 16), got tile {tile} with overlap "
                         f"{overlap}; choose a larger --tile or a smaller --tile-overlap")
    h, w = image.shape[:2]
    rows, cols = axis_layout(h, tile, overlap, align, multiple), axis_layout(w, tile, overlap, align, multiple)
    flip = order == "bgr"
    canvas: Optional[np.ndarray] = None
    s = 0
    carry = nxt = None
    total, done = len(rows) * len(cols), 0
    for r, y0 in enumerate(rows.starts):
        pend = None
        for c, x0 in enumerate(cols.starts):
            patch = image[y0:rows.ends[r], x0:cols.ends[c]]
            x = torch.from_numpy(np.ascontiguousarray(patch[:, :, ::-1] if flip else patch))
            x = x.to(device).permute(2, 0, 1)[None].float().div_(255)
            y = model(x, score=score)[0].float()
            if canvas is None:
                s = _scale_of(x, y)
                canvas = np.empty((h * s, w * s, 3), np.uint8)
                band = 2 * rows.half * s
                carry = torch.zeros(3, band, w * s) if len(rows) > 1 else None
            ra, rb = rows.span(r)
            ca, cb = cols.span(c)
            y = y[:, (ra - y0) * s:(rb - y0) * s, (ca - x0) * s:(cb - x0) * s].cpu()
            y = y * _weights(rows, r, s)[:, None] * _weights(cols, c, s)[None, :]
            pend = _place(canvas, y, rows, cols, r, c, s, carry, pend, flip)
            if c == 0 and r < len(rows) - 1:
                nxt = torch.zeros(3, 2 * rows.half * s, w * s)
            if r < len(rows) - 1:  # the bottom band waits for the next row of tiles
                nxt[:, :, ca * s:cb * s] += y[:, y.shape[1] - 2 * rows.half * s:]
            done += 1
            if progress is not None:
                progress(done, total)
        if r > 0:  # the band above this row has all its contributions now
            top = (rows.seams[r - 1] - rows.half) * s
            _write(canvas, carry, top, 0, flip)
        carry = nxt if r < len(rows) - 1 else None
    return canvas


def _weights(axis: Axis, i: int, s: int) -> torch.Tensor:
    a, b = axis.span(i)
    w = torch.ones((b - a) * s)
    band = 2 * axis.half * s
    if band and i > 0:
        w[:band] = ramp(band, rising=True)
    if band and i < len(axis) - 1:
        w[w.numel() - band:] = ramp(band, rising=False)
    return w


def _write(canvas: np.ndarray, y: torch.Tensor, top: int, left: int, flip: bool) -> None:
    if y.shape[1] == 0 or y.shape[2] == 0:
        return
    arr = _to_uint8(y)
    canvas[top:top + arr.shape[0], left:left + arr.shape[1]] = arr[:, :, ::-1] if flip else arr


def _place(canvas, y, rows: Axis, cols: Axis, r: int, c: int, s: int, carry, pend, flip: bool):
    """Write what tile ``(r, c)`` finishes; add its share of the bands; return the band right of it."""
    ra, _ = rows.span(r)
    ca, _ = cols.span(c)
    band_r, band_c = 2 * rows.half * s, 2 * cols.half * s
    top = band_r if r > 0 else 0
    bottom = y.shape[1] - (band_r if r < len(rows) - 1 else 0)
    if r > 0:
        carry[:, :, ca * s:ca * s + y.shape[2]] += y[:, :top]
    mid = y[:, top:bottom]
    left = band_c if c > 0 else 0
    right = mid.shape[2] - (band_c if c < len(cols) - 1 else 0)
    row0 = ra * s + top
    if c > 0:  # the band left of this tile: the previous tile's share is in pend
        _write(canvas, pend + mid[:, :, :left], row0, ca * s, flip)
    _write(canvas, mid[:, :, left:right], row0, ca * s + left, flip)
    return mid[:, :, right:].clone() if c < len(cols) - 1 else None
