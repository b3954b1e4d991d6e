"""The MiniRes network (see :mod:`adapters.minires`): a small residual encoder-decoder, iqprior's own."""
from __future__ import annotations

import torch
from torch import nn

DEFAULT_WIDTH = 16
DEFAULT_BLOCKS = 2


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))``, 3x3, same channels."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MiniRes(nn.Module):
    """``(B, 3, H, W)`` in [0, 1] -> restored, same shape, not clamped; ``H`` and ``W`` even."""

    def __init__(self, width: int = DEFAULT_WIDTH, blocks: int = DEFAULT_BLOCKS):
        super().__init__()
        w = int(width)
        self.head = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.encoder = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.decoder = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(inplace=True))
        self.tail = nn.Conv2d(w, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(self.up(self.decoder(self.encoder(self.down(self.head(x))))))
