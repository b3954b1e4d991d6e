"""The restorer of the control experiment and its "+" twin (paper Table 4 (a) vs (b))."""
from __future__ import annotations

import copy

import torch
from torch import nn

from adapters.minires.arch import MiniRes

from .config import INJECT_AT, ControlConfig
from .data import GRADES


class TinyRestorer(MiniRes):
    """A small residual encoder-decoder restorer: ``(B, 3, H, W)`` LQ in [0, 1] -> restored, same shape (unclamped).

    ``x + tail(up(decoder(encoder(down(head(x))))))``: the whole correction passes through
    ``encoder`` (half resolution, ``2 * width`` channels), the feature the "+" twin conditions,
    as IQPFR adds its level embedding to the LQ encoder's output ``Z_l`` and decodes from it.
    There is deliberately no full-resolution skip around it: detail carried by an unconditioned
    skip would bypass the level (an earlier version with a U-Net skip learned almost no level
    effect). ``H`` and ``W`` must be even.
    """

    def __init__(self, width: int = 16, blocks: int = 2):
        super().__init__(width, blocks)  # the demo's bundled MiniRes network: same modules, same seeded init
        self.feature_channels = 2 * int(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"TinyRestorer needs even height and width, got {tuple(x.shape[-2:])}")
        return super().forward(x)


def build_twins(cfg: ControlConfig) -> tuple[nn.Module, nn.Module]:
    """The baseline and its "+" twin, from one seeded initialisation (the embedding starts at zero)."""
    import iqprior

    torch.manual_seed(cfg.seed)
    base = TinyRestorer(cfg.width)
    twin = copy.deepcopy(base)
    emb = iqprior.ScoreEmbedding(levels=GRADES, shape=(twin.feature_channels, 1, 1))
    plus = iqprior.condition(twin, at=INJECT_AT, embedding=emb, mode="add")
    return base, plus
