"""SwinIR, DifFace's diffused estimator, re-implemented with the official state-dict keys.

SwinIR (Liang et al., "SwinIR: Image Restoration Using Swin Transformer",
ICCVW 2021) in the variant DifFace (github.com/zsyOAOA/DifFace, revision
5c9ab80, ``models/swinir.py``) trained as its diffused estimator
(``swinir_restoration512_L1.pth``, L1 loss on FFHQ 512). Facts from upstream:

- input RGB in [0, 1]; the mean ``(0.4488, 0.4371, 0.4040)`` is subtracted
  (``img_range`` 1) and added back to the output;
- ``PixelUnshuffle(8)`` then a 3x3 conv to 180 channels (key ``conv_first.1``),
  so a 512 image is worked on as a 64x64 token grid;
- 8 residual Swin Transformer groups (RSTB) of 6 blocks, 6 heads, window 8,
  alternate blocks shifted by 4 (masked; the mask for the 64x64 grid is a
  persistent buffer ``attn_mask`` and so is the relative position index),
  MLP ratio 2, LayerNorm, a 3x3 conv closing each group; a final LayerNorm and
  ``conv_after_body`` with a long residual;
- "nearest+conv" reconstruction: conv to 64 channels + LeakyReLU, then per
  factor 2 a nearest x2 + conv + LeakyReLU(0.2), ``conv_hr``, ``conv_last``.

Deviation: upstream pads the image to a multiple of the window (8) only, which
fails unless the side is a multiple of 64; here the image is reflect-padded to
a multiple of ``window_size * scale`` and the output cropped back to the input
size. At the released 512x512 input both are the identity.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from iqprior.config import ConfigMixin

__all__ = ["SwinIRConfig", "SwinIR"]

RGB_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class SwinIRConfig(ConfigMixin):
    """Constructor arguments; the defaults are DifFace's released estimator.

    ``img_size`` is the token-grid side the shifted-window masks are
    precomputed for (image side / ``scale``: 512 / 8 = 64).
    """

    config_name = "SwinIR"

    img_size: int = 64
    in_chans: int = 3
    embed_dim: int = 180
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6, 6, 6)
    num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6, 6, 6)
    window_size: int = 8
    mlp_ratio: float = 2.0
    scale: int = 8          # PixelUnshuffle factor in front and nearest+conv factor behind ("sf")
    num_feat: int = 64
    img_range: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths ({len(self.depths)}) and num_heads ({len(self.num_heads)}) differ in length")
        if any(self.embed_dim % h for h in self.num_heads):
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by every num_heads {self.num_heads}")
        if self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8 (nearest+conv up-sampler), got {self.scale}")


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, ws*ws, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_merge(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """(B, nW, ws*ws, C) -> (B, H, W, C)."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """Additive mask (nW, ws*ws, ws*ws): 0 within a region, -100 across regions of the rolled grid."""
    region = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for wsl in cuts:
            region[:, hs, wsl, :] = label
            label += 1
    ids = window_partition(region, ws).reshape(-1, ws * ws)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws*ws, ws*ws) index into the (2ws-1)^2 relative-position bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias.

    ``fast_attention`` (:func:`iqprior.fastpath.set_fast_path`): windows and heads folded into one
    contiguous 4-D ``(B, nW*nH, N, hd)`` batch, so SDPA takes its fused kernel instead of the math
    fallback that the 5-D tensors get (float rounding only).
    """

    fast_attention = False

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """x: (B, nW, N, C); mask: (nW, N, N) additive or None."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b, nw, n, 3, self.num_heads, c // self.num_heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.unbind(0)                                            # (B, nW, nH, N, hd)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)                         # (nH, N, N)
        if mask is not None:
            bias = bias[None] + mask[:, None].to(bias.dtype)               # (nW, nH, N, N)
        if self.fast_attention:
            heads, hd = q.shape[2], q.shape[-1]
            if mask is None:   # windows into the batch; the bias (1, nH, N, N) broadcasts
                q, k, v = (t.reshape(b * nw, heads, n, hd) for t in (q, k, v))
                bias = bias[None]
            else:              # windows into the heads, so the (nW, nH, N, N) bias is used as it is
                q, k, v = (t.reshape(b, nw * heads, n, hd) for t in (q, k, v))
                bias = bias.reshape(1, nw * heads, n, n)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype)).view(b, nw, heads, n, -1)
            return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention + MLP block on tokens (B, H*W, C)."""

    def __init__(self, dim: int, resolution: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float):
        super().__init__()
        if resolution <= window_size:  # the window covers the grid: no partition, no shift (as upstream)
            window_size, shift = resolution, 0
        self.window_size, self.shift, self.resolution = window_size, shift, resolution
        self.register_buffer("attn_mask", shifted_window_mask(resolution, resolution, window_size, shift)
                             if shift else None)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        ws, s = self.window_size, self.shift
        y = self.norm1(x).view(b, h, w, c)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        mask = None
        if s:
            mask = (self.attn_mask if (h, w) == (self.resolution, self.resolution)
                    else shifted_window_mask(h, w, ws, s).to(x.device))
        y = window_merge(self.attn(window_partition(y, ws), mask), ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class BlockList(nn.Module):
    """Holds ``blocks`` (the upstream ``BasicLayer``)."""

    def __init__(self, blocks: list[SwinBlock]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, size)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer group: blocks, a 3x3 conv on the grid, a residual."""

    def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float):
        super().__init__()
        self.residual_group = BlockList([
            SwinBlock(dim, resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio)
            for i in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        y = self.residual_group(x, size).transpose(1, 2).reshape(b, c, *size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class PatchNorm(nn.Module):
    """The token LayerNorm after the shallow conv (upstream ``PatchEmbed`` with ``norm``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


class SwinIR(nn.Module):
    """``estimator(x) -> (B, 3, H, W)``: x and output RGB in [0, 1] (output not clamped)."""

    def __init__(self, config: Optional[SwinIRConfig] = None, **overrides: Any):
        super().__init__()
        if config is not None and overrides:
            raise TypeError("give either a SwinIRConfig or keyword overrides, not both")
        cfg = config or SwinIRConfig.from_dict(overrides)
        self.config = cfg
        d, nf = cfg.embed_dim, cfg.num_feat
        self.register_buffer("mean", torch.tensor(RGB_MEAN if cfg.in_chans == 3 else (0.0,) * cfg.in_chans
                                                  ).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Sequential(nn.PixelUnshuffle(cfg.scale),
                                        nn.Conv2d(cfg.in_chans * cfg.scale ** 2, d, 3, padding=1))
        self.patch_embed = PatchNorm(d)
        self.layers = nn.ModuleList([RSTB(d, cfg.img_size, depth, heads, cfg.window_size, cfg.mlp_ratio)
                                     for depth, heads in zip(cfg.depths, cfg.num_heads)])
        self.norm = nn.LayerNorm(d)
        self.conv_after_body = nn.Conv2d(d, d, 3, padding=1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(d, nf, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.n_up = {2: 1, 4: 2, 8: 3}[cfg.scale]
        for i in range(1, self.n_up + 1):
            setattr(self, f"conv_up{i}", nn.Conv2d(nf, nf, 3, padding=1))
        self.conv_hr = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, cfg.in_chans, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features (B, C, h, w) -> (B, C, h, w): the RSTB groups and the final norm."""
        size = (x.shape[2], x.shape[3])
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t, size)
        return self.norm(t).transpose(1, 2).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(f"SwinIR expects (B, {self.config.in_chans}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        mult = self.config.window_size * self.config.scale
        pad_h, pad_w = (-h) % mult, (-w) % mult
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.config.img_range
        f = self.conv_first(x)
        f = self.conv_after_body(self.forward_features(f)) + f
        f = self.conv_before_upsample(f)
        for i in range(1, self.n_up + 1):
            f = self.lrelu(getattr(self, f"conv_up{i}")(F.interpolate(f, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(f)))
        return (out / self.config.img_range + mean)[..., :h, :w]
