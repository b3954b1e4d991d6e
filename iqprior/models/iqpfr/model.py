"""IQPFR Stages II–III: score-conditioned code prediction over two frozen codebooks (arXiv 2503.09294, §3.2–3.3).

Pipeline (Fig. 3 (b), App. 6.1.1), images in [-1, 1] inside the network:

1. ``Z_l = E(x_l)`` — the LQ encoder (initialised from the Stage I encoder).
2. Eq. 7: ``Ẑ_l = Z_l + s`` with ``s`` the learned embedding of the quality level
   (``score_embedding``, one ``(C, h, w)`` tensor per level, zero-initialised);
   or, with ``condition="adain"``, per-level modulation of every LayerNorm of
   the Transformer (App. 6.2.4).
3. A 9-layer Transformer predicts two code sequences ``c₁`` (common) and ``c₂`` (HQ+).
4. Lookup in both frozen codebooks and fusion, Eq. 8: ``Z_f = Z_l¹ + α·Z_l²``.
5. The frozen decoder ``D(Z_f)`` gives the restored face.

The authors' released form (IQPIR, :data:`iqprior.models.iqpfr.config.IQPIR`) is
this network with three options on: one joint prediction head, CodeFormer's
AdaIN of ``Z_f`` to the conditioned ``Ẑ_l`` before decoding, and CodeFormer's
fidelity fusion blocks (``fidelity`` = their ``w``; 0 skips them).

Differentiable discrete path (Stage III, :attr:`IQPFROutput.image` with
``differentiable=True``): a *straight-through soft lookup*. The forward value is
the hard top-1 code (the output stays inside the finite codebook space, which
is what §3.3 relies on against over-optimisation); the backward pass uses the
gradient of the softmax-weighted code mixture ``softmax(logits) @ C``, so
``L_quality = -IQA(D(Z_f))`` reaches the logits, the Transformer and the LQ
encoder. ``latent="continuous"`` is the Table 5 comparison: the decoder reads
the conditioned LQ latent ``Ẑ_l`` itself, with no codebook restriction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ...conditioning import ScoreEmbedding
from ...levels import ScoreLike, as_levels
from ..layers.fusion import FuseSFTBlock, adaptive_instance_norm
from ..layers.transformer import TransformerSALayer, prediction_head
from ..vqgan import VectorQuantizer
from .config import IQPFRConfig
from .dual_vqgan import DualCodebookVQGAN

DEFAULT_LEVEL = 9  # "the condition scores of our quantitative and qualitative results [...] are all 9"
LATENTS = ("discrete", "continuous")


@dataclass
class IQPFROutput:
    """Result of :meth:`IQPFR.forward` (tensors; ``image`` in [-1, 1], ``None`` when not decoded).

    ``logits``/``logits_hq``: ``(B, h*w, K)``; ``indices``/``indices_hq``: ``(B, h*w)``;
    ``lq_feat``: ``Z_l`` ``(B, C, h, w)`` before conditioning; ``quant_feat``: the
    decoder's input ``Z_f``; ``levels``: ``(B,)`` long.
    """

    image: Optional[torch.Tensor]
    logits: torch.Tensor
    logits_hq: torch.Tensor
    indices: torch.Tensor
    indices_hq: torch.Tensor
    lq_feat: torch.Tensor
    quant_feat: torch.Tensor
    levels: Optional[torch.Tensor]


class IQPFR(DualCodebookVQGAN):
    """The full IQPFR network: Stage I parts (same keys) + ``score_embedding`` + Transformer + two heads."""

    def __init__(self, config: Optional[IQPFRConfig] = None, **overrides):
        super().__init__(config, **overrides)
        c = self.config
        n = c.latent_size ** 2
        self.position_emb = nn.Parameter(torch.zeros(n, c.dim_embd))
        self.feat_emb = nn.Linear(c.emb_dim, c.dim_embd)
        adaptive = c.levels if c.condition == "adain" else None
        self.ft_layers = nn.Sequential(*[TransformerSALayer(c.dim_embd, c.n_head, c.dim_mlp, adaptive,
                                                            upstream_attention=c.upstream_attention)
                                         for _ in range(c.n_layers)])
        joint = c.head == "joint"
        self.idx_pred_layer = prediction_head(c.dim_embd, 2 * c.codebook_size if joint else c.codebook_size)
        if not joint:
            self.idx_pred_layer_hq = prediction_head(c.dim_embd, c.hq_codebook_size)
        if c.condition == "add":
            self.score_embedding = ScoreEmbedding(c.levels, c.latent_shape)
        for m in self._heads() + [self.feat_emb, self.ft_layers]:
            m.apply(_init_transformer_weights)
        if c.connect_list:  # CodeFormer's tables: encoder after a stage's last ResBlock, generator after its first
            sizes = [c.img_size // 2 ** i for i in range(len(c.ch_mult))]
            channels = {str(s): c.nf * m for s, m in zip(sizes, c.ch_mult)}
            self.fuse_encoder_block = {str(s): idx[-1] for s, idx in self.encoder.stage_blocks.items()}
            self.fuse_generator_block = {str(s): (idx[-1] if s == c.latent_size else idx[0])
                                         for s, idx in self.generator.stage_blocks.items()}
            self.fuse_convs_dict = nn.ModuleDict({s: FuseSFTBlock(channels[s], channels[s]) for s in c.connect_list})

    # -- parts -----------------------------------------------------------------------------
    def _heads(self) -> list[nn.Module]:
        return [self.idx_pred_layer] + ([self.idx_pred_layer_hq] if hasattr(self, "idx_pred_layer_hq") else [])

    def stage2_modules(self) -> list[nn.Module]:
        """Modules trained in Stages II–III (the codebooks, the decoder and the fusion blocks stay frozen)."""
        mods = [self.encoder, self.feat_emb, self.ft_layers, *self._heads()]
        if hasattr(self, "score_embedding"):
            mods.append(self.score_embedding)
        return mods

    def stage2_parameters(self) -> list[nn.Parameter]:
        """Parameters trained in Stages II–III: those of :meth:`stage2_modules` and ``position_emb``
        (the Transformer's learned positions; the authors' code trains them too)."""
        return [self.position_emb] + [p for m in self.stage2_modules() for p in m.parameters()]

    def levels_of(self, score: Optional[ScoreLike], batch: int, device: torch.device) -> Optional[torch.Tensor]:
        """``(B,)`` levels (``None`` only for an unconditioned model)."""
        if self.config.condition == "none":
            return None
        return as_levels(DEFAULT_LEVEL if score is None else score, self.config.levels, batch=batch, device=device)

    def condition_latent(self, z: torch.Tensor, levels: Optional[torch.Tensor]) -> torch.Tensor:
        """Eq. 7: ``Z_l + s[level]`` (identity for ``condition`` other than ``"add"`` or ``levels=None``)."""
        if levels is None or self.config.condition != "add":
            return z
        return z + self.score_embedding.weight[levels].view(z.shape[0], *self.config.latent_shape).to(z.dtype)

    def predict(self, z: torch.Tensor, levels: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Transformer on the (conditioned) latent ``(B, C, h, w)`` -> logits ``(B, h*w, K₁)``, ``(B, h*w, K₂)``."""
        b = z.shape[0]
        adain_levels = levels if self.config.condition == "adain" else None
        pos = self.position_emb.unsqueeze(1).expand(-1, b, -1)
        x = self.feat_emb(z.flatten(2).permute(2, 0, 1))      # (N, B, D)
        for layer in self.ft_layers:
            x = layer(x, pos, adain_levels)
        if self.config.head == "joint":  # (N, B, 2K) read as (N, B, K, 2): [..., 0] HQ+, [..., 1] common
            out = self.idx_pred_layer(x)
            pair = out.reshape(out.shape[0], out.shape[1], -1, 2)  # sizes from the tensor: a traced batch stays dynamic
            return pair[..., 1].transpose(0, 1), pair[..., 0].transpose(0, 1)
        return self.idx_pred_layer(x).transpose(0, 1), self.idx_pred_layer_hq(x).transpose(0, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``Z_l = E(x)`` and the encoder features the fusion blocks read (``{}`` without ``connect_list``)."""
        if not self.config.connect_list:
            return self.encoder(x), {}
        keep = {self.fuse_encoder_block[s]: s for s in self.config.connect_list}
        feats: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in keep:
                feats[keep[i]] = x
        return x, feats

    def decode(self, z: torch.Tensor, feats: Optional[dict[str, torch.Tensor]] = None,
               fidelity: float | torch.Tensor = 0.0) -> torch.Tensor:
        """``D(z)``; with ``fidelity`` > 0 (or a tensor) and ``connect_list``, CodeFormer's fusion blocks add
        ``fidelity·(dec·scale + shift)`` after the generator blocks at those sizes."""
        if not feats or not (isinstance(fidelity, torch.Tensor) or fidelity > 0):
            return self.generator(z)
        at = {self.fuse_generator_block[s]: s for s in self.config.connect_list}
        for i, block in enumerate(self.generator.blocks):
            z = block(z)
            if i in at:
                z = self.fuse_convs_dict[at[i]](feats[at[i]].detach(), z, fidelity)
        return z

    def lookup(self, logits: torch.Tensor, quantizer: VectorQuantizer, differentiable: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-1 codes of ``logits`` ``(B, N, K)`` -> ``(codes (B, C, h, w), indices (B, N))``.

        ``differentiable``: straight-through soft lookup (forward = hard codes,
        backward = gradient of ``softmax(logits) @ codebook``).
        """
        b, n, _ = logits.shape
        l, c = self.config.latent_size, self.config.emb_dim
        idx = logits.argmax(dim=-1)
        weight = quantizer.embedding.weight
        codes = weight[idx]
        if differentiable:
            soft = torch.softmax(logits.float(), dim=-1) @ weight.float()
            codes = codes + (soft - soft.detach()).to(codes.dtype)
        return codes.view(b, l, l, c).permute(0, 3, 1, 2), idx

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = DEFAULT_LEVEL, decode: bool = True,
                differentiable: bool = False, latent: str = "discrete",
                fidelity: float | torch.Tensor = 0.0) -> IQPFROutput:
        """Restore ``x`` ``(B, 3, S, S)`` in [-1, 1] at quality ``score`` (int level, float score or ``(B,)``);
        ``fidelity``: the fusion blocks' weight (only with ``connect_list``; a tensor ``(B, 1, 1, 1)`` or scalar)."""
        if latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}")
        levels = self.levels_of(score, x.shape[0], x.device)
        z, feats = self.encode(x)
        zc = self.condition_latent(z, levels)
        logits, logits_hq = self.predict(zc, levels)
        z1, idx1 = self.lookup(logits, self.quantize, differentiable)
        z2, idx2 = self.lookup(logits_hq, self.quantize_hq, differentiable)
        z_f = self.fuse(z1, z2, torch.ones(x.shape[0], dtype=torch.bool, device=x.device))  # Eq. 8
        if latent == "continuous":
            z_f = zc
        elif self.config.adain_lookup:
            if not differentiable:  # the released code's straight-through form (the value is z_f up to rounding)
                z_f = zc + (z_f - zc).detach()
            z_f = adaptive_instance_norm(z_f, zc)
        image = self.decode(z_f, feats, fidelity) if decode else None
        return IQPFROutput(image, logits, logits_hq, idx1, idx2, z, z_f, levels)


def _init_transformer_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Embedding)):
        m.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, nn.LayerNorm):
        m.bias.data.zero_()
        m.weight.data.fill_(1.0)
