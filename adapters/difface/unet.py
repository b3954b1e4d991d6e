"""The guided-diffusion UNet of DifFace, re-implemented with the official state-dict keys.

DifFace (Yue & Loy, "DifFace: Blind Face Restoration with Diffused Error
Contraction", TPAMI 2024; github.com/zsyOAOA/DifFace, revision 5c9ab80) samples
with the improved-DDPM / guided-diffusion UNet (Dhariwal & Nichol 2021) trained
on FFHQ at 512x512 (``iddpm_ffhq512_ema500000.pth``). Facts taken from the
upstream ``models/unet.py`` and ``configs/sample/iddpm_ffhq512_swinir.yaml``:

- sinusoidal timestep embedding (``[cos, sin]``, max period 10000) of width
  ``model_channels`` -> ``time_embed`` MLP (Linear, SiLU, Linear) of width
  ``4 * model_channels``;
- residual blocks with GroupNorm(32), SiLU, 3x3 convs and FiLM-style
  "scale-shift norm" from the time embedding (``norm(h) * (1 + scale) + shift``);
- self-attention blocks (heads of ``num_head_channels`` channels, legacy
  head-major q/k/v split) at feature resolutions ``attention_resolutions``
  (given as resolutions: 32, 16, 8 for a 512 input), 3x3 strided-conv
  down-sampling, nearest x2 + 3x3 conv up-sampling;
- output ``2 * 3`` channels: epsilon and the learned-range variance interpolant.

``UNet(x, t)`` takes ``x`` in [-1, 1] and integer (or float) timesteps ``t`` on
the original 0..999 scale, as the official module does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from iqprior.config import ConfigMixin
from iqprior.models.layers.taming import Upsample

__all__ = ["UNetConfig", "UNet", "timestep_embedding"]


@dataclass(frozen=True)
class UNetConfig(ConfigMixin):
    """Constructor arguments; the defaults are the released FFHQ-512 configuration."""

    config_name = "UNet"

    image_size: int = 512
    in_channels: int = 3
    model_channels: int = 32
    out_channels: int = 6
    num_res_blocks: tuple[int, ...] = (1, 2, 2, 2, 2, 3, 4)
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    channel_mult: tuple[int, ...] = (1, 2, 4, 8, 8, 16, 16)
    num_head_channels: int = 64
    dropout: float = 0.0
    use_scale_shift_norm: bool = True

    def __post_init__(self) -> None:
        for name in ("num_res_blocks", "attention_resolutions", "channel_mult"):
            value = getattr(self, name)
            object.__setattr__(self, name, (int(value),) * len(self.channel_mult) if isinstance(value, int)
                               else tuple(int(v) for v in value))
        if len(self.num_res_blocks) != len(self.channel_mult):
            raise ValueError(f"num_res_blocks has {len(self.num_res_blocks)} entries, channel_mult "
                             f"{len(self.channel_mult)}; give one block count per level")
        widths = {self.model_channels * m for m in self.channel_mult}
        if any(w % 32 for w in widths):
            raise ValueError(f"every level width (model_channels * mult = {sorted(widths)}) must be a multiple "
                             "of 32 (GroupNorm with 32 groups)")
        if self.image_size % (2 ** (len(self.channel_mult) - 1)):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**{len(self.channel_mult) - 1}")


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[cos(t f), sin(t f)]``, ``f_i = max_period^(-i/half)``; (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps.reshape(-1, 1).float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm over 32 groups computed in float32 (as upstream), output in the input's dtype."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class TimestepSequential(nn.Sequential):
    """A sequence of layers; residual blocks also receive the time embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


# guided-diffusion's own blocks: Downsample pads symmetrically (key ``op``; taming pads right/bottom) and
# ResBlock takes the time embedding, so neither is the taming block; Upsample is (the shared one).
class Downsample(nn.Module):
    """3x3 convolution with stride 2 (key ``op``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResBlock(nn.Module):
    """Residual block conditioned on the time embedding (scale-shift norm by default)."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, dropout: float = 0.0,
                 use_scale_shift_norm: bool = True):
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, (2 if use_scale_shift_norm else 1) * out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        e = self.emb_layers(emb).to(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            for layer in self.out_layers[1:]:
                h = layer(h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Spatial self-attention; q/k/v from a 1x1 Conv1d, split per head first (legacy order).

    ``fast_attention`` (:func:`iqprior.fastpath.set_fast_path`): contiguous 4-D ``(B, heads, T, ch)``
    q/k/v, so SDPA takes its fused kernel instead of the math fallback of strided 3-D inputs.
    """

    fast_attention = False

    def __init__(self, channels: int, num_head_channels: int):
        super().__init__()
        if channels % num_head_channels:
            raise ValueError(f"attention width {channels} is not divisible by num_head_channels "
                             f"{num_head_channels}")
        self.num_heads = channels // num_head_channels
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))                               # (B, 3C, T)
        length = qkv.shape[-1]
        ch = c // self.num_heads
        if self.fast_attention:
            q, k, v = (t.contiguous() for t in
                       qkv.view(b, self.num_heads, 3 * ch, length).transpose(2, 3).split(ch, dim=3))
            h = F.scaled_dot_product_attention(q, k, v)            # (B, heads, T, ch)
            return (x + self.proj_out(h.transpose(2, 3).reshape(b, c, length))).reshape(b, c, *spatial)
        q, k, v = qkv.reshape(b * self.num_heads, 3 * ch, length).transpose(1, 2).split(ch, dim=2)
        h = F.scaled_dot_product_attention(q, k, v)                # softmax(q k^T / sqrt(ch)) v, (BH, T, ch)
        h = h.transpose(1, 2).reshape(b, c, length)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class UNet(nn.Module):
    """Guided-diffusion UNet: ``unet(x, t) -> (B, out_channels, H, W)``.

    Args (``forward``):
        x: ``(B, in_channels, H, W)`` noisy image in [-1, 1].
        timesteps: ``(B,)`` (or scalar) timesteps on the original 0..999 scale.

    Returns:
        ``(B, 6, H, W)`` for the released model: channels 0..2 the predicted
        noise epsilon, 3..5 the variance interpolant ``v`` in about [-1, 1]
        (``log sigma^2 = (v+1)/2 log beta_t + (1-(v+1)/2) log beta~_t``).
    """

    def __init__(self, config: Optional[UNetConfig] = None, **overrides: Any):
        super().__init__()
        cfg = config or UNetConfig.from_dict(overrides)
        if config is not None and overrides:
            raise TypeError("give either a UNetConfig or keyword overrides, not both")
        self.config = cfg
        mc = cfg.model_channels
        emb_dim = 4 * mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        ch = mc * cfg.channel_mult[0]
        self.input_blocks = nn.ModuleList([TimestepSequential(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skip_channels = [ch]
        res = cfg.image_size
        n_levels = len(cfg.channel_mult)

        def block(cin: int, cout: int) -> ResBlock:
            return ResBlock(cin, emb_dim, cout, cfg.dropout, cfg.use_scale_shift_norm)

        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks[level]):
                layers: list[nn.Module] = [block(ch, mc * mult)]
                ch = mc * mult
                if res in cfg.attention_resolutions:
                    layers.append(AttentionBlock(ch, cfg.num_head_channels))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_channels.append(ch)
            if level != n_levels - 1:
                self.input_blocks.append(TimestepSequential(Downsample(ch)))
                skip_channels.append(ch)
                res //= 2

        self.middle_block = TimestepSequential(block(ch, ch), AttentionBlock(ch, cfg.num_head_channels),
                                               block(ch, ch))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks[level] + 1):
                layers = [block(ch + skip_channels.pop(), mc * mult)]
                ch = mc * mult
                if res in cfg.attention_resolutions:
                    layers.append(AttentionBlock(ch, cfg.num_head_channels))
                if level and i == cfg.num_res_blocks[level]:
                    layers.append(Upsample(ch))
                    res *= 2
                self.output_blocks.append(TimestepSequential(*layers))

        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(),
                                 nn.Conv2d(mc * cfg.channel_mult[0], cfg.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor | int | float) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"UNet expects (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        down = 2 ** (len(self.config.channel_mult) - 1)
        if x.shape[-2] % down or x.shape[-1] % down:
            raise ValueError(f"UNet input sides must be multiples of {down}, got {tuple(x.shape[-2:])}")
        t = torch.as_tensor(timesteps, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels))
        hs = []
        h = x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h.to(x.dtype))
