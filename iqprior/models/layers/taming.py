"""Taming-transformers VQGAN building blocks, shared by every VQGAN-based network.

Esser, Rombach, Ommer, "Taming Transformers for High-Resolution Image
Synthesis", CVPR 2021 (github.com/CompVis/taming-transformers,
``taming/modules/diffusionmodules/model.py``). CodeFormer's VQGAN
(:mod:`iqprior.models.vqgan`, hence IQPFR) and DAEFR's VQ autoencoders
(:mod:`adapters.daefr.arch`) build on these blocks; each port keeps its
upstream's module names (``ResBlock``'s 1x1 skip is ``conv_out`` in CodeFormer,
``nin_shortcut`` in taming and DAEFR: the ``shortcut`` argument).

Group normalisation uses 32 groups as upstream; for channel counts that 32
does not divide (tiny configs only) the number of groups is ``gcd(32, C)``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["group_norm", "swish", "ResBlock", "AttnBlock", "Downsample", "Upsample"]


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm as upstream (eps 1e-6, affine); ``gcd(groups, channels)`` groups."""
    return nn.GroupNorm(num_groups=math.gcd(groups, channels), num_channels=channels, eps=1e-6, affine=True)


def swish(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` written out (bit-identical to upstream's scripted swish)."""
    return x * torch.sigmoid(x)


class ResBlock(nn.Module):
    """norm -> swish -> conv3 -> norm -> swish -> conv3, plus a (1×1-projected, ``shortcut``) skip."""

    def __init__(self, in_ch: int, out_ch: Optional[int] = None, groups: int = 32, shortcut: str = "conv_out"):
        super().__init__()
        out_ch = in_ch if out_ch is None else out_ch
        self.in_channels, self.out_channels = in_ch, out_ch
        self.norm1 = group_norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.norm2 = group_norm(out_ch, groups)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.shortcut = shortcut  # name of the 1x1 skip projection (upstream's key)
        if in_ch != out_ch:
            setattr(self, shortcut, nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        skip = getattr(self, self.shortcut)(x) if self.in_channels != self.out_channels else x
        return h + skip


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1×1 q/k/v/proj convolutions and a residual.

    ``fast_attention`` (:func:`iqprior.fastpath.set_fast_path`): fused SDPA on ``(B, 1, N, C)``
    instead of the explicit ``softmax(q k^T / sqrt(C)) v`` (same result up to float rounding).
    """

    fast_attention = False

    def __init__(self, channels: int, groups: int = 32):
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = x.shape
        if self.fast_attention:
            q, k, v = (f(h).flatten(2).transpose(1, 2).unsqueeze(1) for f in (self.q, self.k, self.v))
            out = F.scaled_dot_product_attention(q, k, v)                # (B, 1, N, C)
            return x + self.proj_out(out.squeeze(1).transpose(1, 2).reshape(b, c, hh, ww))
        q = self.q(h).reshape(b, c, hh * ww).transpose(1, 2)        # (B, N, C)
        k = self.k(h).reshape(b, c, hh * ww)                        # (B, C, N)
        v = self.v(h).reshape(b, c, hh * ww)                        # (B, C, N)
        attn = torch.softmax(torch.bmm(q, k) * (int(c) ** -0.5), dim=2)   # (B, Nq, Nk)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3×3 convolution after zero padding right and bottom by one pixel."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest ×2 upsampling followed by a 3×3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
