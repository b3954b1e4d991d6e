"""MiniRes adapter ("minires", "minires+"): iqprior's own small residual restorer.

Not an upstream model: a network small enough to train on a CPU in minutes, so
that a "+" model with *trained* level embedding can ship with the package (the
offline default of ``iqprior demo``, trained by :mod:`iqprior.demo.recipe` on
the bundled images). Any image size works (odd sides are padded by reflection
and cropped back).

Network (``width`` w, default 16): ``x + tail(up(decoder(encoder(down(head(x))))))``
— a 3x3 conv head at full resolution, a stride-2 conv to half resolution and
``2w`` channels, ``blocks`` residual blocks (conv-ReLU-conv) as the encoder and
as many as the decoder, a pixel-shuffle up-sampling and a 3x3 conv tail
predicting a residual. The whole correction passes through ``encoder``, the
feature "minires+" conditions (IQPFR, arXiv 2503.09294, Eq. 7: the level
embedding is *added* to the LQ encoder's output): a per-channel ``(2w, 1, 1)``
vector that broadcasts over any size, zero at init. There is no full-resolution
skip around it, so detail cannot bypass the level.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from iqprior.config import check_options
from iqprior.io import check_image_batch
from iqprior.levels import ScoreLike

from ..base import Adapter
from ..plus import plus_builder
from ..registry import builder
from ..specs import SPECS
from .arch import DEFAULT_BLOCKS, DEFAULT_WIDTH, MiniRes

REQUIREMENTS = SPECS["minires"].size_requirements  # even sides (one stride-2 level), at least 2


class MiniResAdapter(Adapter):
    """``y = model(x, score=None)``: x, y ``(B, 3, H, W)`` RGB in [0, 1] at any size (sides >= 2); y not clamped."""

    native_size = None

    def __init__(self, name: str = "minires", width: int = DEFAULT_WIDTH, blocks: int = DEFAULT_BLOCKS,
                 **options: Any):
        check_options(options, ("width", "blocks"), f"option(s) for {name}")
        for key, value in (("width", width), ("blocks", blocks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {key} must be an int >= 1, got {value!r}")
        super().__init__(name, {"width": width, "blocks": blocks})
        self.net = MiniRes(width, blocks)

    def condition_shape(self) -> tuple[int, int, int]:
        """One value per channel of ``encoder``'s output, ``(2 * width, 1, 1)``: any image size."""
        return (2 * self.options["width"], 1, 1)

    def forward(self, x: torch.Tensor, score: ScoreLike | None = None) -> torch.Tensor:
        h, w = check_image_batch(x).shape[-2:]
        least, multiple = REQUIREMENTS.minimum, REQUIREMENTS.multiple_of
        if min(h, w) < least:
            raise ValueError(f"{self.adapter_name} needs images of at least {least}x{least} pixels, got {w}x{h}")
        pad = (0, -w % multiple, 0, -h % multiple)
        if any(pad):
            x = F.pad(x, pad, mode="reflect")
        return self.run_net(x, score=score)[..., :h, :w]

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """L1 to the reference, conditioned on the reference's ``score``."""
        lq, gt = check_image_batch(lq), check_image_batch(gt, "gt")
        if lq.shape != gt.shape:
            raise ValueError(f"lq and gt must have the same shape, got {tuple(lq.shape)} and {tuple(gt.shape)}")
        return {"l1": F.l1_loss(self(lq, score=score), gt)}


@builder("minires")
def build_minires(**options: Any) -> MiniResAdapter:
    """MiniRes (random init; no official weights: train it, e.g. ``python -m iqprior.demo.recipe``)."""
    return MiniResAdapter("minires", **options)


build_minires_plus = plus_builder("minires+", MiniResAdapter, doc="""MiniRes + a zero-initialised per-channel level
    embedding added to ``encoder``'s output; options ``width``, ``blocks`` as :func:`build_minires`.""")
