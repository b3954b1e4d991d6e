"""Dead-leaves images: the control experiment's default pristine sources (``--source leaves``).

The dead-leaves model (Matheron 1968; Lee, Mumford & Huang 2001) stacks opaque discs of random
colour whose radii follow a power law (density ``∝ r^-3``), each one partly hidden by the discs
in front of it. It reproduces the statistics of natural images that matter to restoration —
scale invariance, a ``1/f²`` power spectrum, sharp occluding edges — and it is the test chart
with which camera makers measure texture loss (ISO 19567-2, IEEE P1858). The control experiment
uses it instead of the five bundled photographs because the paper's claim needs content whose
detail a restorer can *predict* beyond what the degraded input keeps (the role FFHQ's 70 000
aligned faces and a codebook play in the paper): a sharp edge can be re-sharpened from a blurred,
down-sampled one, a photograph's unseen texture cannot. docs/experiments/control.md measures both.

Rendering: discs are painted front to back into a ``supersample``-times larger canvas (each pixel
takes the colour of the first disc that covers it, so the last discs only fill the gaps) and the
canvas is box-downscaled, which leaves edges sharp but anti-aliased, as the bundled photographs
are after their box downscaling. Everything random comes from the ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the training and held-out images' seeds differ: held-out images are the same for every ``--seed``
HELD_OUT_SEED = 2503_09294


@dataclass(frozen=True)
class LeavesConfig:
    """Image side, number of training and held-out images, disc radii (px of the image) and colour range."""

    size: int = 256
    train: int = 24
    held_out: int = 3
    radius: tuple[float, float] = (10.0, 64.0)
    colour: tuple[float, float] = (0.05, 0.95)
    supersample: int = 4


def dead_leaves(size: int, rng: np.random.Generator, radius: tuple[float, float] = (10.0, 64.0),
                colour: tuple[float, float] = (0.05, 0.95), supersample: int = 4,
                max_discs: int = 200_000) -> np.ndarray:
    """A ``(size, size, 3)`` float32 RGB dead-leaves image in [0, 1] (see the module docstring)."""
    import cv2

    rmin, rmax = (float(r) * supersample for r in radius)
    if not 0 < rmin <= rmax:
        raise ValueError(f"radius must be 0 < min <= max, got {radius}")
    side = int(size) * supersample
    canvas = np.zeros((side, side, 3), np.float32)
    free = np.ones((side, side), bool)
    left = side * side
    grid = np.arange(side, dtype=np.float64)
    inv_a, inv_b = 1.0 / rmin ** 2, 1.0 / rmax ** 2
    for _ in range(max_discs):
        if left == 0:
            break
        r = 1.0 / np.sqrt(inv_a - rng.random() * (inv_a - inv_b))    # inverse CDF of the r^-3 density
        cy, cx = rng.uniform(-r, side + r, 2)
        col = rng.uniform(colour[0], colour[1], 3).astype(np.float32)
        y0, y1 = max(0, int(cy - r)), min(side, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(side, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        inside = ((grid[y0:y1, None] - cy) ** 2 + (grid[None, x0:x1] - cx) ** 2 <= r * r) & free[y0:y1, x0:x1]
        n = int(inside.sum())
        if n:
            canvas[y0:y1, x0:x1][inside] = col
            free[y0:y1, x0:x1][inside] = False
            left -= n
    return np.clip(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA), 0.0, 1.0)


def leaves_sources(seed: int, cfg: LeavesConfig = LeavesConfig()):
    """``(train, held_out)`` :class:`.data.Source` lists: ``cfg.train`` images drawn from ``seed``, and
    ``cfg.held_out`` images drawn from :data:`HELD_OUT_SEED` (the same held-out images for every seed)."""
    from .data import Source

    def draw(n: int, prefix: str, rng: np.random.Generator):
        return [Source(f"{prefix}{i:02d}", dead_leaves(cfg.size, rng, cfg.radius, cfg.colour, cfg.supersample))
                for i in range(n)]

    return (draw(cfg.train, "leaves/train", np.random.default_rng([seed, 1])),
            draw(cfg.held_out, "leaves/held", np.random.default_rng(HELD_OUT_SEED)))
