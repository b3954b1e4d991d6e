"""The tile side from a memory budget (``--max-memory 4G``).

The working memory of one tile is estimated from a probe: the model runs once on a small tile with
forward hooks on its modules, and a tile's memory is taken as ``4 ×`` the largest module output
(a layer's input, its output and the features a dense or residual block keeps alive) plus the tile's
input and output, scaled with the tile's area. What the run holds whatever the tile (the process as it
is, the uint8 input and output, the cross-fade band) is subtracted from the budget first.
``docs/guides/large-images-and-video.md`` compares the estimate with measured peaks.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Optional

import torch

__all__ = ["parse_memory", "choose_tile", "tile_bytes_per_pixel", "current_rss"]

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
ACTIVATION_FACTOR = 4


def parse_memory(text: str) -> int:
    """``"4G"``, ``"512M"``, ``"1.5GiB"``, ``"2000000000"`` -> bytes (``ValueError`` otherwise)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"--max-memory expects a size such as 4G, 512M or 1.5GiB, got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def current_rss() -> int:
    """The process's resident memory now, in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _page_size()
    except OSError:
        return 0


def _page_size() -> int:
    import os
    return os.sysconf("SC_PAGE_SIZE")


@torch.no_grad()
def tile_bytes_per_pixel(model: Any, device: torch.device | str = "cpu", probe: int = 64,
                         multiple: int = 1) -> tuple[float, int]:
    """``(bytes per input pixel of one tile's working memory, scale)`` from one probe forward."""
    net = model
    while not isinstance(net, torch.nn.Module) and getattr(net, "model", None) is not None:
        net = net.model  # through wrappers (precision guard, colour fix)
    if not isinstance(net, torch.nn.Module):
        raise ValueError("--max-memory needs a PyTorch model (it probes the layers); with --onnx give --tile N")
    probe = -(-probe // multiple) * multiple
    largest = [0]

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in net.modules() if m is not net]
    try:
        x = torch.rand(1, 3, probe, probe, device=device)
        y = model(x)
    finally:
        for h in handles:
            h.remove()
    scale = max(1, y.shape[-1] // probe)
    total = ACTIVATION_FACTOR * largest[0] + 2 * (x.numel() + y.numel()) * 4
    return total / probe**2, scale


def choose_tile(model: Any, budget: int, height: int, width: int, overlap: int, device: torch.device | str = "cpu",
                multiple: int = 1, base: Optional[int] = None,
                probe_fn: Optional[Callable[[], tuple[float, int]]] = None) -> Optional[int]:
    """The largest tile side whose estimated peak stays within ``budget`` bytes (``None``: the whole image
    fits untiled). ``base``: the memory held now (default: this process's RSS)."""
    per_pixel, scale = probe_fn() if probe_fn else tile_bytes_per_pixel(model, device, multiple=multiple)
    base = current_rss() if base is None else base
    fixed = base + height * width * 3 * (1 + scale * scale) + 3 * (overlap // 2) * scale * width * scale * 4
    avail = budget - fixed
    side = max(height, width)
    if avail > 0 and per_pixel * height * width <= avail:
        return None
    tile = int(math.sqrt(max(avail, 0) / per_pixel)) // multiple * multiple if avail > 0 else 0
    if tile < max(2 * overlap, 16):
        raise ValueError(f"--max-memory {budget / 2**30:.2f} GiB is too small: the process ({base / 2**30:.2f} "
                         f"GiB now), the uint8 input and output ({(fixed - base) / 2**30:.2f} GiB) leave no room "
                         f"for a tile of at least {max(2 * overlap, 16)} px; raise it or lower --tile-overlap")
    return min(tile, -(-side // multiple) * multiple)
