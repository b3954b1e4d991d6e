"""The code-prediction Transformer layer shared by CodeFormer, DAEFR and IQPFR.

CodeFormer (Zhou et al., NeurIPS 2022; github.com/sczhou/CodeFormer,
``basicsr/archs/codeformer_arch.py`` at b33cc7d) predicts codebook indices
with a stack of ``TransformerSALayer``: pre-norm self-attention with the
learned position embedding added to queries and keys (not values), then a
GELU MLP, tokens sequence-first ``(N, B, C)``. IQPFR (arXiv 2503.09294,
§3.2, App. 6.1.1) uses the same layer ("The Conditional Transformer
comprises 9 Self-Attention layers"); its module names are upstream's, so
the networks' ``state_dict`` keys are ``self_attn.*``, ``linear1/2.*``,
``norm1/2.*``. DAEFR (Tsai et al., ICLR 2024; LIAGM/DAEFR) copies the layer
with ``need_weights=False`` (``upstream_attention=False`` here) and its own MLP
width.

Two switches:

- ``levels``: App. 6.2.4's alternative condition ("we replace standard
  normalization layers in transformer blocks with adaptive layer norm"),
  :class:`LevelNorm` — the LayerNorm output is modulated per level,
  ``y·(1 + γ[level]) + β[level]``, with ``(γ, β)`` from a zero-initialised
  :class:`iqprior.ScoreEmbedding` (``(2, C)`` per level), so it starts as the
  plain layer.
- ``upstream_attention``: ``True`` takes ``nn.MultiheadAttention``'s
  ``need_weights=True`` path (explicit softmax), as upstream CodeFormer calls
  it, so logits are bit-identical to the official network; ``False`` (IQPFR)
  lets PyTorch use its fused kernel (equal to float tolerance, faster).
  ``fast_attention`` (set by :func:`iqprior.fastpath.set_fast_path` on an
  adapter's fast path) overrides ``upstream_attention`` at inference.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...conditioning import ScoreEmbedding

__all__ = ["LevelNorm", "TransformerSALayer", "prediction_head"]


class LevelNorm(nn.Module):
    """LayerNorm whose output is scaled and shifted per quality level (adaptive norm, App. 6.2.4)."""

    def __init__(self, dim: int, levels: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.level_embedding = ScoreEmbedding.for_adain(levels, dim)

    def forward(self, x: torch.Tensor, levels: Optional[torch.Tensor]) -> torch.Tensor:
        y = self.norm(x)
        if levels is None:
            return y
        gamma, beta = self.level_embedding.weight[levels].view(-1, 2, x.shape[-1]).unbind(1)  # (B, C) each
        return y * (1 + gamma.to(y.dtype)) + beta.to(y.dtype)  # x: (N, B, C) sequence-first


class TransformerSALayer(nn.Module):
    """Pre-norm self-attention + GELU MLP on ``(N, B, C)`` tokens (sequence first).

    Args:
        dim: token width ``C``.
        heads: attention heads (``dim`` divisible by it).
        dim_mlp: hidden width of the MLP.
        levels: number of quality levels for :class:`LevelNorm` (``None``: plain LayerNorm).
        dropout: dropout after attention and in the MLP (0 in CodeFormer and IQPFR).
        upstream_attention: the attention path upstream CodeFormer takes (bit-identical logits).
    """

    fast_attention = False  # the fast path: fused attention even where upstream_attention is set

    def __init__(self, dim: int, heads: int = 8, dim_mlp: int = 2048, levels: Optional[int] = None,
                 dropout: float = 0.0, upstream_attention: bool = False):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, dim_mlp)
        self.linear2 = nn.Linear(dim_mlp, dim)
        self.adaptive = levels is not None
        if self.adaptive:
            self.norm1, self.norm2 = LevelNorm(dim, levels), LevelNorm(dim, levels)
        else:
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.upstream_attention = upstream_attention

    def _norm(self, norm: nn.Module, x: torch.Tensor, levels: Optional[torch.Tensor]) -> torch.Tensor:
        return norm(x, levels) if self.adaptive else norm(x)

    def forward(self, x: torch.Tensor, query_pos: Optional[torch.Tensor] = None,
                levels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x`` ``(N, B, C)``; ``query_pos`` ``(N, B, C)`` added to queries and keys; ``levels`` ``(B,)``."""
        h = self._norm(self.norm1, x, levels)
        qk = h if query_pos is None else h + query_pos
        x = x + self.dropout(self.self_attn(qk, qk, value=h,
                                                need_weights=self.upstream_attention and not self.fast_attention)[0])
        h = self._norm(self.norm2, x, levels)
        return x + self.dropout(self.linear2(self.dropout(F.gelu(self.linear1(h)))))

    def extra_repr(self) -> str:
        return f"upstream_attention={self.upstream_attention}" if self.upstream_attention else ""


def prediction_head(dim: int, codes: int) -> nn.Sequential:
    """LayerNorm + bias-free linear map to code logits (CodeFormer's ``idx_pred_layer``)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, codes, bias=False))
