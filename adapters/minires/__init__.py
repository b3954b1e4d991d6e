"""MiniRes and MiniRes+: the network (:mod:`.arch`), the adapter and its "+" builder (:mod:`.adapter`)."""
from .adapter import MiniResAdapter, build_minires, build_minires_plus
from .arch import DEFAULT_BLOCKS, DEFAULT_WIDTH, MiniRes

__all__ = ["MiniResAdapter", "build_minires", "build_minires_plus", "MiniRes", "DEFAULT_WIDTH",
           "DEFAULT_BLOCKS"]
