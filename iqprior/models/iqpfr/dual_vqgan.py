"""Stage I of IQPFR: a VQGAN with a common and an HQ+ codebook (arXiv 2503.09294, §3.1, Eqs. 1–6, App. 6.2.3).

"we first use the common codebook to quantize E(x_h), resulting in Z_q¹. [...]
If the average quality score of the current HQ input, denoted as S, surpasses
the threshold S_thr, we then engage the HQ+ codebook to quantize E(x_h),
yielding Z_q²" and the decoder reads (Eq. 2)

    Z_q = Z_q¹ + α·Z_q²   if S > S_thr,        Z_q = Z_q¹   otherwise.

The codebook loss (Eq. 6) compares ``E(x_h)`` with this routed ``Z_q``, so the
HQ+ codebook receives gradient only from HQ+ images and learns "the residual
between the HQ+ images and the common images". ``hq_quantize="latent"``
(default) searches the HQ+ codebook with ``E(x_h)`` as the text says;
``"residual"`` searches it with ``E(x_h) - Z_q¹``, the residual-VQ reading.

App. 6.2.3's alternative fusion (``fusion="attention"``) replaces the sum by
multi-head attention with queries from ``Z_q¹`` and keys/values from ``Z_q²``
(HQ+ images) or from ``Z_q¹`` (others), Eq. 20: ``Z_q = MHA(Q, K, V)``.

Encoder, common codebook (``quantize``) and decoder (``generator``) keep the
CodeFormer VQGAN's module names, so ``vqgan_code1024.pth`` initialises them
(:meth:`DualCodebookVQGAN.load_vqgan_checkpoint`); the HQ+ codebook is
``quantize_hq``. Images are RGB in [-1, 1] inside the network.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import torch
from torch import nn

from ...losses.vq import codebook_loss
from ..vqgan import Encoder, Generator, VectorQuantizer
from .config import IQPFRConfig

RouteLike = Union[None, bool, torch.Tensor]


class AttentionFusion(nn.Module):
    """App. 6.2.3: ``Z_q = MultiHeadAttention(Q = Z_q¹, K = V = Z_q² (HQ+) or Z_q¹)`` over the ``h×w`` tokens."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z1.shape
        q = z1.flatten(2).transpose(1, 2)
        kv = torch.where(mask.view(b, 1, 1, 1), z2, z1).flatten(2).transpose(1, 2)
        out, _ = self.attn(q, kv, kv, need_weights=False)
        return out.transpose(1, 2).reshape(b, c, h, w)


class DualCodebookVQGAN(nn.Module):
    """Encoder, common and HQ+ codebooks, optional attention fusion, decoder.

    ``forward(x, hq_plus)`` with ``x`` ``(B, 3, S, S)`` in [-1, 1] and
    ``hq_plus`` a ``(B,)`` bool (or one bool) returns ``(reconstruction,
    codebook_loss, info)``; ``info`` holds ``indices``/``indices_hq`` ``(B, h*w)``,
    ``hq_mask``, ``z`` (the encoder output) and ``perplexity``/``perplexity_hq``.
    """

    def __init__(self, config: Optional[IQPFRConfig] = None, **overrides):
        super().__init__()
        if config is None:
            config = IQPFRConfig(**overrides)
        elif overrides:
            raise TypeError("pass either an IQPFRConfig or keyword overrides, not both")
        if not isinstance(config, IQPFRConfig):
            raise TypeError(f"config must be an IQPFRConfig, got {type(config).__name__}")
        self.config = config
        vc = config.vqgan
        self.encoder = Encoder(vc)
        self.quantize = VectorQuantizer(config.codebook_size, config.emb_dim, config.beta)
        self.quantize_hq = VectorQuantizer(config.hq_codebook_size, config.emb_dim, config.beta)
        self.generator = Generator(vc)
        if config.fusion == "attention":
            self.fusion = AttentionFusion(config.emb_dim, config.fusion_heads)

    # -- routing and fusion --------------------------------------------------------------
    def route(self, hq_plus: RouteLike = None, score: Optional[torch.Tensor] = None, batch: int = 1,
              device: Optional[torch.device] = None) -> torch.Tensor:
        """``(B,)`` bool: which images use the HQ+ codebook (``hq_plus``, or ``score > S_thr``)."""
        if hq_plus is None and score is None:
            raise ValueError("pass hq_plus= (a (B,) bool) or score= (ensemble scores in [0, 1]) to route Eq. 2")
        if hq_plus is None:
            mask = torch.as_tensor(score, device=device).float() > self.config.hq_threshold
        else:
            mask = torch.as_tensor(hq_plus, device=device).bool()
        if mask.dim() == 0:
            mask = mask.expand(batch)
        if mask.shape != (batch,):
            raise ValueError(f"expected {batch} routing flags, got shape {tuple(mask.shape)}")
        return mask

    def fuse(self, z1: torch.Tensor, z2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 2 / Eq. 8: ``z1 + α·z2`` where ``mask`` (else ``z1``); or attention fusion (App. 6.2.3)."""
        if self.config.fusion == "attention":
            return self.fusion(z1, z2, mask)
        m = mask.to(z1.dtype).view(-1, 1, 1, 1)
        return z1 + self.config.alpha * m * z2

    @staticmethod
    def nearest(quantizer: VectorQuantizer, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codes of ``z`` ``(B, C, h, w)``: ``(codes (B, C, h, w), indices (B, h*w))`` (Eq. 1)."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        idx = quantizer.distances(flat.float()).argmin(dim=1)
        codes = quantizer.embedding.weight[idx].view(b, h, w, c).permute(0, 3, 1, 2)
        return codes.to(z.dtype), idx.view(b, h * w)

    def nearest_dual(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Nearest codes of ``z`` in both codebooks: ``(z1, idx1, z2, idx2)`` (codes ``(B, C, h, w)``,
        indices ``(B, h*w)``); the HQ+ codebook quantises ``z`` or ``z - z1`` (``hq_quantize``)."""
        z1, idx1 = self.nearest(self.quantize, z)
        target = z if self.config.hq_quantize == "latent" else z - z1.detach()
        z2, idx2 = self.nearest(self.quantize_hq, target)
        return z1, idx1, z2, idx2

    @torch.no_grad()
    def code_targets(self, x_hq: torch.Tensor, encoder: Optional[nn.Module] = None) -> dict[str, torch.Tensor]:
        """Stage II targets of HQ images ``x_hq`` ``(B, 3, S, S)`` in [-1, 1] (Eq. 13, no gradient).

        ``encoder`` (default: this network's) gives ``z = E(x_hq)``; returns the GT
        codes ``{"indices": c₁ (B, h*w), "indices_hq": c₂ (B, h*w)}`` and the fused GT
        latent ``"z_g"`` ``(B, C, h, w)``. Stage II training uses a frozen copy of the
        Stage I encoder, since the network's own encoder is being trained.
        """
        z = (self.encoder if encoder is None else encoder)(x_hq)
        _, idx1, _, idx2 = self.nearest_dual(z)
        return {"indices": idx1, "indices_hq": idx2, "z_g": self.codes_of(idx1, idx2)}

    def quantize_dual(self, z: torch.Tensor, mask: torch.Tensor):
        """Quantise ``z`` with both codebooks and fuse per Eq. 2.

        Returns ``(z_q_st, loss, info)``: ``z_q_st`` = ``z + sg(Z_q - z)``
        (straight-through to the encoder), ``loss`` = Eq. 6 on the fused ``Z_q``.
        """
        z1, idx1, z2, idx2 = self.nearest_dual(z)
        z_q = self.fuse(z1, z2, mask)
        loss = codebook_loss(z, z_q, self.config.beta)
        info = {"indices": idx1, "indices_hq": idx2, "hq_mask": mask, "z": z,
                "perplexity": _perplexity(idx1, self.config.codebook_size),
                "perplexity_hq": _perplexity(idx2[mask], self.config.hq_codebook_size)}
        return z + (z_q - z).detach(), loss, info

    def codes_of(self, indices: torch.Tensor, indices_hq: torch.Tensor, mask: Optional[torch.Tensor] = None
                 ) -> torch.Tensor:
        """Fused latent of code indices ``(B, h*w)`` (Eq. 8 / Eq. 13; ``mask=None`` fuses every image)."""
        b = indices.shape[0]
        l, c = self.config.latent_size, self.config.emb_dim
        z1 = self.quantize.get_codebook_feat(indices, (b, l, l, c))
        z2 = self.quantize_hq.get_codebook_feat(indices_hq, (b, l, l, c))
        if mask is None:
            mask = torch.ones(b, dtype=torch.bool, device=indices.device)
        return self.fuse(z1, z2, mask)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, hq_plus: RouteLike = None, score: Optional[torch.Tensor] = None):
        mask = self.route(hq_plus, score, x.shape[0], x.device)
        z = self.encoder(x)
        z_q, loss, info = self.quantize_dual(z, mask)
        return self.generator(z_q), loss, info

    # -- initialisation from CodeFormer's VQGAN ------------------------------------------
    def load_vqgan_checkpoint(self, path: Union[str, os.PathLike]) -> DualCodebookVQGAN:
        """Initialise ``encoder``, ``quantize`` (common codebook) and ``generator`` from
        CodeFormer's ``vqgan_code1024.pth`` (strictly: every key of those three parts must be
        present with its shape; the HQ+ codebook and fusion keep their initialisation)."""
        from iqprior.checkpoint import load_strict, match_prefix, read_official_checkpoint

        view = nn.Module()
        view.encoder, view.quantize, view.generator = self.encoder, self.quantize, self.generator
        state = read_official_checkpoint(path)
        state = match_prefix(state, view.state_dict().keys(), ("module.", "vqgan."))
        state = {k: v for k, v in state.items() if k.split(".")[0] in ("encoder", "quantize", "generator")}
        load_strict(view, state, source=str(path))
        return self


def _perplexity(idx: torch.Tensor, n: int) -> torch.Tensor:
    if idx.numel() == 0:
        return torch.zeros((), device=idx.device)
    p = torch.bincount(idx.reshape(-1), minlength=n).float() / idx.numel()
    return torch.exp(-(p * torch.log(p + 1e-10)).sum())
