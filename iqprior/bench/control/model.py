"""The restorer of the control experiment and its "+" twin (paper Table 4 (a) vs (b))."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .config import INJECT_AT, ControlConfig
from .data import GRADES


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyRestorer(nn.Module):
    """A small residual encoder-decoder restorer: ``(B, 3, H, W)`` LQ in [0, 1] -> restored, same shape (unclamped).

    ``x + tail(up(decoder(encoder(down(head(x))))))``: the whole correction passes through
    ``encoder`` (half resolution, ``2 * width`` channels), the feature the "+" twin conditions,
    as IQPFR adds its level embedding to the LQ encoder's output ``Z_l`` and decodes from it.
    There is deliberately no full-resolution skip around it: detail carried by an unconditioned
    skip would bypass the level (an earlier version with a U-Net skip learned almost no level
    effect). ``H`` and ``W`` must be even.
    """

    def __init__(self, width: int = 16, blocks: int = 2):
        super().__init__()
        w = int(width)
        self.head = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.encoder = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.decoder = nn.Sequential(*[ResBlock(2 * w) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(inplace=True))
        self.tail = nn.Conv2d(w, 3, 3, padding=1)
        self.feature_channels = 2 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"TinyRestorer needs even height and width, got {tuple(x.shape[-2:])}")
        return x + self.tail(self.up(self.decoder(self.encoder(self.down(self.head(x))))))


def build_twins(cfg: ControlConfig) -> tuple[nn.Module, nn.Module]:
    """The baseline and its "+" twin, from one seeded initialisation (the embedding starts at zero)."""
    import iqprior

    torch.manual_seed(cfg.seed)
    base = TinyRestorer(cfg.width)
    twin = copy.deepcopy(base)
    emb = iqprior.ScoreEmbedding(levels=GRADES, shape=(twin.feature_channels, 1, 1))
    plus = iqprior.condition(twin, at=INJECT_AT, embedding=emb, mode="add")
    return base, plus
