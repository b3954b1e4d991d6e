"""The CodeFormer VQGAN: encoder, nearest-neighbour vector quantizer, generator.

A re-implementation of the VQGAN that CodeFormer (Zhou et al., "Towards
Robust Blind Face Restoration with Codebook Lookup Transformer", NeurIPS 2022;
github.com/sczhou/CodeFormer, ``basicsr/archs/vqgan_arch.py`` at b33cc7d) uses
and that IQPFR (arXiv 2503.09294, §3.1) builds its dual codebook on. Module
and parameter names follow the official ``state_dict`` exactly (see
``codeformer_vqgan_manifest.json``: ``encoder.blocks.*``,
``quantize.embedding.weight``, ``generator.blocks.*``), so the released
``vqgan_code1024.pth`` loads strictly.

Geometry (released config, :class:`VQGANConfig` defaults): 512² RGB in
[-1, 1] -> 5 stride-2 downsamplings -> a 16×16×256 latent -> 1024 codes.

A tiny configuration for tests (8×8 latent)::

    >>> cfg = VQGANConfig(img_size=64, nf=8, ch_mult=(1, 2, 2, 4), attn_resolutions=(8,),
    ...                   emb_dim=16, codebook_size=32)
    >>> vq = VQAutoEncoder(cfg)
    >>> x = torch.rand(2, 3, 64, 64) * 2 - 1
    >>> rec, loss, info = vq(x)
    >>> rec.shape, info["indices"].shape, cfg.latent_shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 64]), (16, 8, 8))

The building blocks (``ResBlock``, ``AttnBlock``, ``Downsample``,
``Upsample``, ``group_norm``, ``swish``) are taming-transformers' and live in
:mod:`iqprior.models.layers.taming` (DAEFR's port uses them too). The whole
VQGAN stays in the core: IQPFR builds its dual codebook on it and initialises
Stage I from the released ``vqgan_code1024.pth`` (:class:`VQAutoEncoder`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from ..config import ConfigMixin
from .layers.taming import AttnBlock, Downsample, ResBlock, Upsample, group_norm

__all__ = ["VQGANConfig", "Encoder", "Generator", "VectorQuantizer", "VQAutoEncoder"]


@dataclass(frozen=True)
class VQGANConfig(ConfigMixin):
    """Constructor arguments of :class:`VQAutoEncoder` (defaults = the released CodeFormer VQGAN).

    The one place the VQGAN geometry is written: the CodeFormer and IQPFR
    configs derive from it (their ``vqgan`` is this part alone), so their
    ``config.json`` and YAML stay flat.

    Attributes:
        img_size: square input size; must be divisible by ``2 ** (len(ch_mult) - 1)``.
        nf: base channel count; stage ``i`` has ``nf * ch_mult[i]`` channels.
        ch_mult: channel multipliers, one stage per entry (one downsampling between stages).
        res_blocks: residual blocks per stage.
        attn_resolutions: feature sizes at which self-attention follows each residual block.
        emb_dim: latent / code dimension.
        codebook_size: number of codes.
        beta: commitment weight of the codebook loss (paper Eq. 6).
        norm_groups: GroupNorm groups (``gcd(norm_groups, C)`` is used per layer).
    """

    img_size: int = 512
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    emb_dim: int = 256
    codebook_size: int = 1024
    beta: float = 0.25
    norm_groups: int = 32

    config_name = "VQGAN config"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(int(c) for c in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise ValueError(f"ch_mult must be a non-empty sequence of positive ints, got {self.ch_mult}")
        for name in ("img_size", "nf", "res_blocks", "emb_dim", "codebook_size", "norm_groups"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        factor = 2 ** (len(self.ch_mult) - 1)
        if self.img_size % factor:
            raise ValueError(f"img_size {self.img_size} must be divisible by 2**(len(ch_mult)-1) = {factor}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

    @property
    def vqgan(self) -> VQGANConfig:
        """The VQGAN geometry alone (a derived config's extra fields dropped)."""
        if type(self) is VQGANConfig:
            return self
        return VQGANConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(VQGANConfig)})

    @property
    def latent_size(self) -> int:
        """Side of the latent grid (16 for the released config)."""
        return self.img_size // 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(emb_dim, latent_size, latent_size)`` — (256, 16, 16) for the released config."""
        return (self.emb_dim, self.latent_size, self.latent_size)

    @property
    def top_channels(self) -> int:
        """Channels at the lowest resolution (``nf * ch_mult[-1]``; 512 released)."""
        return self.nf * self.ch_mult[-1]


class Encoder(nn.Module):
    """``(B, 3, S, S)`` in [-1, 1] -> ``(B, emb_dim, S/2^(n-1), S/2^(n-1))``; layers in ``blocks``."""

    def __init__(self, config: VQGANConfig = VQGANConfig(), in_channels: int = 3):
        super().__init__()
        c, g = config, config.norm_groups
        res = c.img_size
        mults = (1,) + c.ch_mult
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, c.nf, 3, 1, 1)]
        ch = c.nf
        self.stage_blocks: dict[int, list[int]] = {}  # feature size -> indices of its ResBlocks
        for i, m in enumerate(c.ch_mult):
            ch_in, ch = c.nf * mults[i], c.nf * m
            for _ in range(c.res_blocks):
                self.stage_blocks.setdefault(res, []).append(len(blocks))
                blocks.append(ResBlock(ch_in, ch, g))
                ch_in = ch
                if res in c.attn_resolutions:
                    blocks.append(AttnBlock(ch, g))
            if i != len(c.ch_mult) - 1:
                blocks.append(Downsample(ch))
                res //= 2
        blocks += [ResBlock(ch, ch, g), AttnBlock(ch, g), ResBlock(ch, ch, g),   # non-local middle
                   group_norm(ch, g), nn.Conv2d(ch, c.emb_dim, 3, 1, 1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Generator(nn.Module):
    """The decoder: ``(B, emb_dim, L, L)`` -> ``(B, 3, S, S)`` in (about) [-1, 1]; layers in ``blocks``.

    Named ``generator`` upstream. Note that, as upstream, :class:`GroupNorm` is
    *not* followed by an activation before the final convolution.
    """

    def __init__(self, config: VQGANConfig = VQGANConfig(), out_channels: int = 3):
        super().__init__()
        c, g = config, config.norm_groups
        ch = c.top_channels
        res = c.latent_size
        blocks: list[nn.Module] = [nn.Conv2d(c.emb_dim, ch, 3, 1, 1),
                                   ResBlock(ch, ch, g), AttnBlock(ch, g), ResBlock(ch, ch, g)]
        self.stage_blocks: dict[int, list[int]] = {}  # feature size -> indices of its ResBlocks (not the middle)
        for i in reversed(range(len(c.ch_mult))):
            ch_out = c.nf * c.ch_mult[i]
            for _ in range(c.res_blocks):
                self.stage_blocks.setdefault(res, []).append(len(blocks))
                blocks.append(ResBlock(ch, ch_out, g))
                ch = ch_out
                if res in c.attn_resolutions:
                    blocks.append(AttnBlock(ch, g))
            if i != 0:
                blocks.append(Upsample(ch))
                res *= 2
        blocks += [group_norm(ch, g), nn.Conv2d(ch, out_channels, 3, 1, 1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook (``embedding.weight``: ``(codebook_size, emb_dim)``).

    ``forward(z)`` returns ``(z_q, loss, info)``:

    - ``z_q``: ``(B, C, H, W)``, the nearest codes with a straight-through
      gradient to ``z`` (``z + (z_q - z).detach()``, as upstream);
    - ``loss``: paper Eq. 6, ``||sg(z) - z_q||² + beta * ||z - sg(z_q)||²``
      (means over elements);
    - ``info``: ``indices`` ``(B, H*W)`` long (row-major), ``perplexity``,
      ``mean_distance``.
    """

    def __init__(self, codebook_size: int = 1024, emb_dim: int = 256, beta: float = 0.25):
        super().__init__()
        self.codebook_size, self.emb_dim, self.beta = codebook_size, emb_dim, beta
        self.embedding = nn.Embedding(codebook_size, emb_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    def distances(self, z_flat: torch.Tensor) -> torch.Tensor:
        """Squared L2 distances ``(N, codebook_size)`` of rows ``z_flat`` ``(N, emb_dim)`` to the codes."""
        w = self.embedding.weight
        return (z_flat ** 2).sum(dim=1, keepdim=True) + (w ** 2).sum(1) - 2 * (z_flat @ w.t())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if z.dim() != 4 or z.shape[1] != self.emb_dim:
            raise ValueError(f"expected z of shape (B, {self.emb_dim}, H, W), got {tuple(z.shape)}")
        b, c, h, w = z.shape
        z_nhwc = z.permute(0, 2, 3, 1).contiguous()
        d = self.distances(z_nhwc.view(-1, c))
        idx = d.argmin(dim=1)
        z_q = self.embedding.weight[idx].view(b, h, w, c)
        loss = torch.mean((z_nhwc.detach() - z_q) ** 2) + self.beta * torch.mean((z_nhwc - z_q.detach()) ** 2)
        z_q = z_nhwc + (z_q - z_nhwc).detach()
        counts = torch.bincount(idx, minlength=self.codebook_size).to(z.dtype) / idx.numel()
        perplexity = torch.exp(-(counts * torch.log(counts + 1e-10)).sum())
        info = {"indices": idx.view(b, h * w), "perplexity": perplexity, "mean_distance": d.mean()}
        return z_q.permute(0, 3, 1, 2).contiguous(), loss, info

    def get_codebook_feat(self, indices: torch.Tensor, shape: Optional[Sequence[int]]) -> torch.Tensor:
        """Codes for ``indices`` (any shape, ``B*H*W`` entries).

        ``shape`` = ``(B, H, W, C)`` (upstream's convention) gives ``(B, C, H, W)``;
        ``None`` gives ``(N, C)``.
        """
        feat = self.embedding.weight[indices.reshape(-1).long()]
        if shape is None:
            return feat
        if len(shape) != 4:
            raise ValueError(f"shape must be (B, H, W, C), got {tuple(shape)}")
        return feat.view(*shape).permute(0, 3, 1, 2).contiguous()


class VQAutoEncoder(nn.Module):
    """Encoder + :class:`VectorQuantizer` + :class:`Generator` with the official key names.

    ``forward(x)`` with x ``(B, 3, S, S)`` in [-1, 1] returns ``(reconstruction,
    codebook_loss, info)`` like upstream.
    """

    def __init__(self, config: Optional[VQGANConfig] = None, **overrides):
        super().__init__()
        if config is None:
            config = VQGANConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a VQGANConfig or keyword overrides, not both")
        if not isinstance(config, VQGANConfig):
            raise TypeError(f"config must be a VQGANConfig, got {type(config).__name__}")
        self.config = config
        self.encoder = Encoder(config)
        self.quantize = VectorQuantizer(config.codebook_size, config.emb_dim, config.beta)
        self.generator = Generator(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``x`` in [-1, 1] -> quantize(encoder(x)) = ``(z_q, loss, info)``."""
        return self.quantize(self.encoder(x))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.generator(z_q)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Decode code indices ``(B, L*L)`` (or ``(B, L, L)``)."""
        b = indices.shape[0]
        l = self.config.latent_size
        return self.generator(self.quantize.get_codebook_feat(indices, (b, l, l, self.config.emb_dim)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        z_q, loss, info = self.encode(x)
        return self.generator(z_q), loss, info
