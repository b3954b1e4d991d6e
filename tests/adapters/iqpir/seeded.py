"""Deterministic weights for the IQPIR parity test (test helper, no official code).

Every state-dict entry is drawn from its own ``numpy.random.RandomState`` seeded
with ``crc32(key)``, so the values depend on the key and shape alone (not on the
order modules are built in, nor on torch's RNG). Scales keep the activations of
the 512² network in a useful range: norm weights ``1 + 0.05·N``, biases
``0.02·N``, conv / linear weights ``N / sqrt(fan_in)``, codebooks ``N``, the
level table ``0.5·N``, the position embedding ``0.1·N``.

The same function made the stored reference outputs (``data/iqpir_reference.npz``)
from the authors' network, and makes our network's weights in the test.
"""
from __future__ import annotations

import math
import zlib
from typing import Iterable

import numpy as np
import torch


def seeded_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    rs = np.random.RandomState(zlib.crc32(key.encode()))
    noise = rs.standard_normal(size=shape).astype(np.float32)
    if key in ("quantize.embedding.weight", "quantize_aesthetic.embedding.weight"):
        scale, offset = 1.0, 0.0
    elif key == "score_embed.weight":
        scale, offset = 0.5, 0.0
    elif key == "position_emb":
        scale, offset = 0.1, 0.0
    elif key.endswith(".bias"):
        scale, offset = 0.02, 0.0
    elif len(shape) == 1:          # GroupNorm / LayerNorm weights
        scale, offset = 0.05, 1.0
    else:
        scale, offset = 1.0 / math.sqrt(int(np.prod(shape[1:]))), 0.0
    return torch.from_numpy(noise * np.float32(scale) + np.float32(offset))


def seeded_state(entries: Iterable[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    """``{key: tensor}`` for ``(key, shape)`` pairs (float32)."""
    return {k: seeded_tensor(k, tuple(int(s) for s in shape)) for k, shape in entries}


def seeded_input(size: int = 512, batch: int = 1) -> torch.Tensor:
    """A ``(B, 3, size, size)`` image in [0, 1] from ``RandomState(2026)``: smooth blobs plus noise."""
    rs = np.random.RandomState(2026)
    low = rs.uniform(0.0, 1.0, size=(batch, 3, 8, 8)).astype(np.float32)
    x = torch.nn.functional.interpolate(torch.from_numpy(low), size=(size, size), mode="bilinear",
                                        align_corners=False)
    noise = torch.from_numpy(rs.uniform(-0.1, 0.1, size=(batch, 3, size, size)).astype(np.float32))
    return (x + noise).clamp(0.0, 1.0)
