"""The NU2Net network, re-implemented with the keys of the released ``NU2Net_ckpt.pth``.

Guo, Wu et al., "Underwater Ranker: Learn Which Is Better and How to Be Better",
AAAI 2023; upstream RQ-Wu/UnderwaterRanker (revision f9bf350,
``all_model/NU2Net/model.py``). ``basic_channel`` 64, residual, ``norm`` tail:
a 4-stage encoder (conv, then conv + instance norm + ELU blocks after 2x
max-pools: 64, 128, 256, 512 channels) and a decoder of the same blocks
followed by bilinear (``align_corners=True``) 2x upsampling, with additive
skips; a 1x1 conv + tanh gives a residual added to the input. The ``norm`` tail
min-max normalises each channel when the output leaves [0, 1]; the official
code tests that condition over the whole batch, here per image (identical at
batch 1, the demo's setting, and independent of how images are batched).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NU2Net", "Encoder", "Decoder", "ConvNormELU", "Upsample2x", "BASIC_CHANNEL",
           "normalize_per_channel", "normalize_global"]

BASIC_CHANNEL = 64


def normalize_per_channel(y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """The ``norm`` tail: per image, if any value leaves [0, 1], min-max each channel to [0, 1)."""
    flat = y.flatten(2)
    lo = flat.amin(dim=2, keepdim=True)
    hi = flat.amax(dim=2, keepdim=True)
    out_of_range = (flat.amax(dim=(1, 2)) > 1) | (flat.amin(dim=(1, 2)) < 0)
    normed = (flat - lo) / (hi - lo + eps)
    return torch.where(out_of_range[:, None, None], normed, flat).view_as(y)


def normalize_global(y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``utils.normalize_img`` of the demo: per image, min-max over all channels if out of [0, 1]."""
    flat = y.flatten(1)
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    out_of_range = (hi > 1) | (lo < 0)
    return torch.where(out_of_range, (flat - lo) / (hi - lo + eps), flat).view_as(y)


class ConvNormELU(nn.Module):
    """3x3 conv -> instance norm (no affine) -> ELU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.out = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.InstanceNorm2d(cout), nn.ELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


class Encoder(nn.Module):
    def __init__(self, c: int = BASIC_CHANNEL):
        super().__init__()
        self.e_stage1 = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1), ConvNormELU(c, c))
        self.e_stage2 = nn.Sequential(nn.MaxPool2d(2, 2), ConvNormELU(c, 2 * c))
        self.e_stage3 = nn.Sequential(nn.MaxPool2d(2, 2), ConvNormELU(2 * c, 4 * c))
        self.e_stage4 = nn.Sequential(nn.MaxPool2d(2, 2), ConvNormELU(4 * c, 8 * c))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x1 = self.e_stage1(x)
        x2 = self.e_stage2(x1)
        x3 = self.e_stage3(x2)
        return x1, x2, x3, self.e_stage4(x3)


class Upsample2x(nn.Module):
    """``nn.UpsamplingBilinear2d(scale_factor=2)``: bilinear with ``align_corners=True``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class Decoder(nn.Module):
    def __init__(self, c: int = BASIC_CHANNEL):
        super().__init__()
        self.d_stage4 = nn.Sequential(ConvNormELU(8 * c, 4 * c), Upsample2x())
        self.d_stage3 = nn.Sequential(ConvNormELU(4 * c, 2 * c), Upsample2x())
        self.d_stage2 = nn.Sequential(ConvNormELU(2 * c, c), Upsample2x())
        self.d_stage1 = nn.Sequential(ConvNormELU(c, c // 4))
        self.output = nn.Sequential(nn.Conv2d(c // 4, 3, 1, 1, 0), nn.Tanh())

    def forward(self, x: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor,
                x4: torch.Tensor) -> torch.Tensor:
        y = self.d_stage4(x4)
        y = self.d_stage3(y + x3)
        y = self.d_stage2(y + x2)
        return self.output(self.d_stage1(y + x1)) + x


class NU2Net(nn.Module):
    """The released configuration (20 tensors, 3.1 M parameters); input/output RGB in [0, 1]."""

    def __init__(self, basic_channel: int = BASIC_CHANNEL):
        super().__init__()
        self.encoder = Encoder(basic_channel)
        self.decoder = Decoder(basic_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B,3,H,W) with H, W multiples of 8 (at least 16) -> normalised output, same size."""
        return normalize_per_channel(self.decoder(x, *self.encoder(x)))
