"""DAEFR's restoration network, re-implemented with the official state-dict layout.

DAEFR: "Dual Associated Encoder for Face Restoration" (Tsai et al., ICLR 2024),
upstream LIAGM/DAEFR (revision 02d5010, ``DAEFR/models/daefr.py`` and
``DAEFR/modules/vqvae/vqvae_arch.py``; config ``configs/DAEFR.yaml``).

Inference path (input and output in [-1, 1], 512x512 in the released config)::

    z_lq = quant_conv(encoder(x))            # LQ encoder, (B, 256, 16, 16)
    z_hq = HQ_quant_conv(HQ_encoder(x))      # HQ encoder on the same LQ input
    f    = cross_attention(z_hq, z_lq)       # queries from LQ; keys, values and residual from HQ
    t    = feat_emb(f) ; 9 pre-norm Transformer layers (+ learned position embedding)
    idx  = argmax(idx_pred_layer(t))         # top-1 code index per position
    out  = decoder(post_quant_conv(Fixed_quantize[idx]))

``vqvae.Fixed_encoder``/``Fixed_quant_conv`` (the GT branch of training) and the
associated codebooks ``HQ_quantize``/``LQ_quantize`` are in the released file
but unused at inference; they are built so that the file loads strictly.

Every size is a :class:`DAEFRConfig` field (defaults = the released config), so
tests can build a tiny network with the same structure. The VQ autoencoders are
taming-transformers' and use the shared blocks of :mod:`iqprior.models.layers.taming`;
the Transformer layer is :class:`iqprior.models.layers.transformer.TransformerSALayer`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from iqprior.config import ConfigMixin
from iqprior.models.layers.taming import Downsample, ResBlock, Upsample, group_norm, swish
from iqprior.models.layers.transformer import TransformerSALayer

__all__ = ["DAEFRConfig", "DAEFRNet", "DAEFROutput", "UNUSED_AT_INFERENCE"]

# Submodules of DAEFRNet that the inference path never calls (manifest: unused_at_inference).
UNUSED_AT_INFERENCE = ("vqvae.Fixed_encoder", "vqvae.Fixed_quant_conv", "vqvae.HQ_quantize", "vqvae.LQ_quantize")


@dataclass(frozen=True)
class DAEFRConfig(ConfigMixin):
    """Sizes of the DAEFR network; the defaults are the released ``DAEFR.yaml``.

    VQ autoencoders: ``ch``, ``ch_mult``, ``num_res_blocks``, ``attn_resolutions``,
    ``resolution``, ``z_channels``, ``embed_dim`` (code dimension), ``n_embed``
    (codebook size), ``vq_heads`` (heads of their attention blocks).
    Association: ``cross_heads`` (heads of the cross-attention on ``embed_dim``).
    Transformer: ``dim_embd``, ``n_head``, ``n_layers``, ``dim_mlp``.
    """

    ch: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    resolution: int = 512
    in_channels: int = 3
    out_ch: int = 3
    z_channels: int = 256
    embed_dim: int = 256
    n_embed: int = 1024
    vq_heads: int = 1
    cross_heads: int = 8
    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    dim_mlp: int = 1024

    config_name = "DAEFR"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        for name in ("ch", "num_res_blocks", "resolution", "in_channels", "out_ch", "z_channels", "embed_dim",
                     "n_embed", "vq_heads", "cross_heads", "dim_embd", "n_head", "n_layers", "dim_mlp"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DAEFRConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if not self.ch_mult:
            raise ValueError("DAEFRConfig.ch_mult must not be empty")
        widths = [self.ch * m for m in self.ch_mult] + [self.embed_dim]
        if any(w % 32 for w in widths):
            raise ValueError(f"channel widths {widths} must be multiples of 32 (GroupNorm with 32 groups)")
        if self.resolution % self.downscale:
            raise ValueError(f"resolution {self.resolution} must be divisible by {self.downscale} "
                             f"(2 ** (len(ch_mult) - 1))")
        for heads, dim, what in ((self.cross_heads, self.embed_dim, "cross_heads / embed_dim"),
                                 (self.n_head, self.dim_embd, "n_head / dim_embd"),
                                 (self.vq_heads, self.ch * self.ch_mult[-1], "vq_heads / top width")):
            if dim % heads:
                raise ValueError(f"{what}: {dim} channels cannot be split into {heads} heads")

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_size(self) -> int:
        """Side of the code map (16 for 512 inputs)."""
        return self.resolution // self.downscale


def _res_block(cin: int, cout: int) -> ResBlock:
    """Taming's block with its upstream key ``nin_shortcut`` (32 groups: DAEFRConfig keeps widths multiples of 32)."""
    return ResBlock(cin, cout, shortcut="nin_shortcut")


# Kept apart from the taming AttnBlock: DAEFR's is multi-head and has a second norm (``norm1``/``norm2``
# keys) for its cross-attention, where the taming block is single-head with one ``norm``.
class AttnBlock(nn.Module):
    """Multi-head spatial attention with 1x1-conv projections and a residual.

    ``forward(x)`` is self-attention on ``norm1(x)``. ``forward(x, context)``
    is DAEFR's association: queries from ``norm2(context)``, keys and values
    from ``norm1(x)``, and the residual is ``x``. Channels split head-major.
    ``fast_attention`` (:func:`iqprior.fastpath.set_fast_path`): fused SDPA instead of the
    explicit softmax (float rounding only).
    """

    fast_attention = False

    def __init__(self, channels: int, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.norm1 = group_norm(channels)
        self.norm2 = group_norm(channels)  # used only when a context is given
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        hx = self.norm1(x)
        src = hx if context is None else self.norm2(context)
        b, c, hh, ww = x.shape
        d = c // self.heads
        q = self.q(src).reshape(b, self.heads, d, hh * ww).transpose(2, 3)   # (b, heads, n, d)
        k = self.k(hx).reshape(b, self.heads, d, hh * ww)                     # (b, heads, d, n)
        v = self.v(hx).reshape(b, self.heads, d, hh * ww).transpose(2, 3)    # (b, heads, n, d)
        if self.fast_attention:
            out = F.scaled_dot_product_attention(q.contiguous(), k.transpose(2, 3).contiguous(), v.contiguous())
        else:
            attn = torch.softmax(torch.matmul(q * (d ** -0.5), k), dim=-1)
            out = torch.matmul(attn, v)                                        # (b, heads, n, d)
        out = out.permute(0, 1, 3, 2).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


def _mid(channels: int, heads: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = _res_block(channels, channels)
    mid.attn_1 = AttnBlock(channels, heads)
    mid.block_2 = _res_block(channels, channels)
    return mid


def _run_mid(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(h)))


class Encoder(nn.Module):
    """VQ encoder: image (B, 3, R, R) -> latent (B, z_channels, R/2^L, R/2^L)."""

    def __init__(self, cfg: DAEFRConfig):
        super().__init__()
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.down = nn.ModuleList()
        res, cin = cfg.resolution, cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            cout = cfg.ch * mult
            for _ in range(cfg.num_res_blocks):
                stage.block.append(_res_block(cin, cout))
                cin = cout
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(cin, cfg.vq_heads))
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(cin)
                res //= 2
            self.down.append(stage)
        self.mid = _mid(cin, cfg.vq_heads)
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = _run_mid(self.mid, h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """VQ decoder: latent (B, z_channels, r, r) -> image (B, 3, r*2^L, r*2^L), in [-1, 1] when trained."""

    def __init__(self, cfg: DAEFRConfig):
        super().__init__()
        cin = cfg.ch * cfg.ch_mult[-1]
        res = cfg.latent_size
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid = _mid(cin, cfg.vq_heads)
        stages = []
        for level in reversed(range(len(cfg.ch_mult))):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            cout = cfg.ch * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(_res_block(cin, cout))
                cin = cout
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(cin, cfg.vq_heads))
            if level != 0:
                stage.upsample = Upsample(cin)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)  # up[0] is the full-resolution stage, as upstream
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, cfg.out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _run_mid(self.mid, self.conv_in(z))
        for stage in reversed(self.up):
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class Codebook(nn.Module):
    """A VQ codebook (``embedding.weight``: (n_embed, embed_dim)) with nearest-code search and lookup."""

    def __init__(self, n_embed: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``(B, H*W)`` of the nearest codes (squared L2) to ``z`` ``(B, C, H, W)``."""
        b, c = z.shape[:2]
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        e = self.embedding.weight
        dist = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * flat @ e.t()
        return dist.argmin(1).view(b, -1)

    def lookup(self, indices: torch.Tensor, side: int) -> torch.Tensor:
        """Codes of ``indices`` ``(B, side*side)`` as a ``(B, C, side, side)`` map."""
        b = indices.shape[0]
        return self.embedding(indices).view(b, side, side, -1).permute(0, 3, 1, 2).contiguous()


class DualVQ(nn.Module):
    """The ``vqvae`` container: LQ, HQ and fixed (GT) encoders, one decoder, three codebooks.

    Attribute names and order follow upstream's ``VQVAEGANMERGE`` so that the
    state-dict keys are the released file's.
    """

    def __init__(self, cfg: DAEFRConfig):
        super().__init__()
        self.encoder = Encoder(cfg)          # LQ encoder
        self.HQ_encoder = Encoder(cfg)       # HQ encoder (associated), run on the LQ input
        self.Fixed_encoder = Encoder(cfg)    # original HQ encoder: GT codes in training
        self.decoder = Decoder(cfg)
        self.Fixed_quantize = Codebook(cfg.n_embed, cfg.embed_dim)  # the fixed HQ codebook
        self.HQ_quantize = Codebook(cfg.n_embed, cfg.embed_dim)
        self.LQ_quantize = Codebook(cfg.n_embed, cfg.embed_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.HQ_quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.Fixed_quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    def decode(self, quant: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quant))


class DAEFROutput(NamedTuple):
    """``image``: (B, 3, R, R) in [-1, 1] (None when not decoded); ``logits``: (B, N, n_embed);
    ``feature``: the association output entering the Transformer, (B, embed_dim, r, r)."""

    image: Optional[torch.Tensor]
    logits: torch.Tensor
    feature: torch.Tensor


class DAEFRNet(nn.Module):
    """DAEFR with the official keys (``position_emb``, ``vqvae.*``, ``cross_attention.*``, ...).

    ``net(x)`` maps a (B, 3, R, R) image in [-1, 1] to the restored image in
    [-1, 1] (not clamped). ``net(x, aux=True)`` returns a :class:`DAEFROutput`;
    ``decode=False`` skips the decoder (for the code-prediction losses).
    """

    def __init__(self, cfg: DAEFRConfig = DAEFRConfig()):
        super().__init__()
        self.cfg = cfg
        self.position_emb = nn.Parameter(torch.zeros(cfg.latent_size ** 2, cfg.dim_embd))
        self.vqvae = DualVQ(cfg)
        self.cross_attention = AttnBlock(cfg.embed_dim, cfg.cross_heads)
        self.feat_emb = nn.Linear(cfg.embed_dim, cfg.dim_embd)
        self.ft_layers = nn.Sequential(*[TransformerSALayer(cfg.dim_embd, cfg.n_head, cfg.dim_mlp)
                                         for _ in range(cfg.n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(cfg.dim_embd),
                                            nn.Linear(cfg.dim_embd, cfg.n_embed, bias=False))

    def check_input(self, x: torch.Tensor) -> None:
        r = self.cfg.resolution
        if x.dim() != 4 or x.shape[1] != self.cfg.in_channels or tuple(x.shape[-2:]) != (r, r):
            raise ValueError(f"DAEFR expects (B, {self.cfg.in_channels}, {r}, {r}) aligned face crops, got "
                             f"{tuple(x.shape)}; resize aligned faces to {r}x{r} first")

    def associate(self, x: torch.Tensor) -> torch.Tensor:
        """The cross-attention feature (B, embed_dim, r, r) entering the Transformer."""
        z_lq = self.vqvae.quant_conv(self.vqvae.encoder(x))
        z_hq = self.vqvae.HQ_quant_conv(self.vqvae.HQ_encoder(x))
        return self.cross_attention(z_hq, z_lq)

    def predict_logits(self, feature: torch.Tensor) -> torch.Tensor:
        """Code logits (B, r*r, n_embed) from the association feature."""
        tokens = self.feat_emb(feature.flatten(2).permute(2, 0, 1))   # (N, B, dim)
        pos = self.position_emb.unsqueeze(1)
        for layer in self.ft_layers:
            tokens = layer(tokens, pos)
        return self.idx_pred_layer(tokens).permute(1, 0, 2)

    @torch.no_grad()
    def gt_codes(self, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training targets from a GT image in [-1, 1]: code indices (B, r*r) and quantised feature."""
        z = self.vqvae.Fixed_quant_conv(self.vqvae.Fixed_encoder(gt))
        idx = self.vqvae.Fixed_quantize.nearest(z)
        return idx, self.vqvae.Fixed_quantize.lookup(idx, self.cfg.latent_size)

    def forward(self, x: torch.Tensor, aux: bool = False, decode: bool = True):
        self.check_input(x)
        feature = self.associate(x)
        logits = self.predict_logits(feature)
        image = None
        if decode:
            quant = self.vqvae.Fixed_quantize.lookup(logits.argmax(-1), self.cfg.latent_size)
            quant = feature + (quant - feature).detach()  # upstream's straight-through form
            image = self.vqvae.decode(quant)
        return DAEFROutput(image, logits, feature) if aux else image
