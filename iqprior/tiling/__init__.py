"""Tiled inference in bounded memory (``iqprior restore --tile N --tile-overlap M``, ``--max-memory``).

:func:`restore_tiled` runs any image model (an adapter, an exported ONNX file) tile by tile into a uint8
canvas; :func:`choose_tile` picks the tile side from a memory budget. Face models at their native size
are not tiled (their face crops are already 512²).
"""
from __future__ import annotations

from .budget import choose_tile, parse_memory
from .grid import axis_layout
from .run import DEFAULT_OVERLAP, restore_tiled

__all__ = ["restore_tiled", "choose_tile", "parse_memory", "axis_layout", "DEFAULT_OVERLAP"]
