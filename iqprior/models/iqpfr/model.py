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
from ...levels import DEFAULT_LEVEL, ScoreLike, as_levels
from ..layers.transformer import TransformerSALayer, prediction_head
from ..vqgan import VectorQuantizer
from .config import IQPFRConfig
from .dual_vqgan import DualCodebookVQGAN

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
        self.ft_layers = nn.Sequential(*[TransformerSALayer(c.dim_embd, c.n_head, c.dim_mlp, adaptive)
                                         for _ in range(c.n_layers)])
        self.idx_pred_layer = prediction_head(c.dim_embd, c.codebook_size)
        self.idx_pred_layer_hq = prediction_head(c.dim_embd, c.hq_codebook_size)
        if c.condition == "add":
            self.score_embedding = ScoreEmbedding(c.levels, c.latent_shape)
        for m in (self.feat_emb, self.ft_layers, self.idx_pred_layer, self.idx_pred_layer_hq):
            m.apply(_init_transformer_weights)

    # -- parts -----------------------------------------------------------------------------
    def stage2_modules(self) -> list[nn.Module]:
        """Modules trained in Stages II–III (the codebooks and the decoder stay frozen)."""
        mods = [self.encoder, self.feat_emb, self.ft_layers, self.idx_pred_layer, self.idx_pred_layer_hq]
        if hasattr(self, "score_embedding"):
            mods.append(self.score_embedding)
        return mods

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
        return self.idx_pred_layer(x).transpose(0, 1), self.idx_pred_layer_hq(x).transpose(0, 1)

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
                differentiable: bool = False, latent: str = "discrete") -> IQPFROutput:
        """Restore ``x`` ``(B, 3, S, S)`` in [-1, 1] at quality ``score`` (int level, float score or ``(B,)``)."""
        if latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}")
        levels = self.levels_of(score, x.shape[0], x.device)
        z = self.encoder(x)
        zc = self.condition_latent(z, levels)
        logits, logits_hq = self.predict(zc, levels)
        z1, idx1 = self.lookup(logits, self.quantize, differentiable)
        z2, idx2 = self.lookup(logits_hq, self.quantize_hq, differentiable)
        z_f = self.fuse(z1, z2, torch.ones(x.shape[0], dtype=torch.bool, device=x.device))  # Eq. 8
        if latent == "continuous":
            z_f = zc
        image = self.generator(z_f) if decode else None
        return IQPFROutput(image, logits, logits_hq, idx1, idx2, z, z_f, levels)


def _init_transformer_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Embedding)):
        m.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, nn.LayerNorm):
        m.bias.data.zero_()
        m.weight.data.fill_(1.0)
