"""One image file through a tiled model: read as uint8, restore tile by tile, write the PNG atomically.

What ``iqprior restore --tile`` / ``--max-memory`` runs per file. The file is decoded once as uint8 BGR
(OpenCV's own layout: no channel copy); an image with alpha, gray or 16-bit samples goes through
:func:`iqprior.io.to_rgb_float` as the untiled path does (one float copy of the input for those only).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..io import MAX_FILE_BYTES, MAX_PIXELS, MIN_SIDE, ImageReadError, atomic_write_bytes, header_size, to_rgb_float
from .run import restore_tiled, tile_align, tile_multiple

__all__ = ["read_image_uint8", "tile_multiple", "tile_align", "restore_file_tiled", "write_png_bgr"]


def read_image_uint8(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to ``(H, W, 3)`` uint8 BGR, with :func:`iqprior.io.read_image_array`'s checks."""
    import cv2

    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageReadError(f"{path} is above the {MAX_FILE_BYTES / 2**30:.0f} GiB limit for one image file")
        data = path.read_bytes()
    except OSError as e:
        raise ImageReadError(f"cannot read {path}: {e.strerror or e}") from None
    size = header_size(data, path, MAX_PIXELS) if data else None
    if size is None:
        raise ImageReadError(f"{path} is not a decodable image (empty, corrupt, truncated, or a format iqprior "
                             f"does not read)")
    w, h = size
    if min(w, h) < MIN_SIDE:
        raise ImageReadError(f"{path} is {w}x{h}; images need at least {MIN_SIDE} px per side")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise ImageReadError(f"{path} cannot be decoded: {str(e).strip().splitlines()[-1]}") from None
    del data
    if img is None:
        raise ImageReadError(f"{path} is not a decodable image (corrupt or truncated, or an unsupported format)")
    if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
        return img
    rgb = to_rgb_float(img, path)
    return np.ascontiguousarray((rgb[:, :, ::-1] * 255).round().astype(np.uint8))


def write_png_bgr(path: str | os.PathLike, canvas: np.ndarray) -> Path:
    """Encode a uint8 BGR array as PNG and write it atomically."""
    import cv2

    ok, enc = cv2.imencode(".png", canvas)
    if not ok:
        raise ValueError(f"cannot encode a {canvas.shape} image as PNG")
    return atomic_write_bytes(path, enc.tobytes())


def restore_file_tiled(model: Callable[..., torch.Tensor], src: str | os.PathLike, dst: str | os.PathLike, *,
                       tile: Optional[int], overlap: int, score: Any = None, device: torch.device | str = "cpu",
                       color_fix: str = "none", max_memory: Optional[int] = None,
                       progress: Optional[Callable[[int, int], None]] = None) -> dict[str, Any]:
    """Restore ``src`` into the PNG ``dst`` tile by tile; returns ``{"tile": side used (None: untiled),
    "size": (H, W) of the result}``. ``tile=None`` with ``max_memory`` (bytes) chooses the side from the
    budget (:func:`iqprior.tiling.choose_tile`); ``color_fix="adain"`` is applied to the whole result
    with whole-image statistics (``"wavelet"`` is per model call: wrap the model in
    :class:`iqprior.colorfix.ColorFixed`)."""
    image = read_image_uint8(src)
    h, w = image.shape[:2]
    multiple = tile_multiple(model)
    if tile is None and max_memory is not None:
        from .budget import choose_tile

        tile = choose_tile(model, max_memory, h, w, overlap, device=device, multiple=multiple)
    side = tile if tile is not None else -(-max(h, w) // multiple) * multiple
    canvas = restore_tiled(model, image, side, overlap if tile is not None else 0, score=score, device=device,
                           multiple=multiple, align=tile_align(model), order="bgr", progress=progress)
    if color_fix == "adain":
        from ..colorfix import adain_canvas

        adain_canvas(canvas, image)
    del image
    write_png_bgr(dst, canvas)
    return {"tile": tile, "size": canvas.shape[:2]}
