"""The code-prediction Transformer of IQPFR Stage II (arXiv 2503.09294, §3.2, App. 6.1.1, 6.2.4).

"The Conditional Transformer comprises 9 Self-Attention layers. The first layer
takes Z_l and the condition score as inputs, while subsequent layers use the
output of the preceding layer." The layer follows CodeFormer's
``TransformerSALayer`` (pre-norm self-attention with the learned position
embedding added to queries and keys, then a GELU MLP), with its module names.

App. 6.2.4's alternative condition ("we replace standard normalization layers
in transformer blocks with adaptive layer norm") is :class:`LevelNorm`: the
LayerNorm output is modulated per level, ``y·(1 + γ[level]) + β[level]``, with
``(γ, β)`` from a zero-initialised :class:`iqprior.ScoreEmbedding` (``(2, C)``
per level), so it starts as the plain layer.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...conditioning import ScoreEmbedding


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
    """Pre-norm self-attention + MLP on ``(N, B, C)`` tokens (sequence first)."""

    def __init__(self, dim: int, heads: int, dim_mlp: int, levels: Optional[int] = None, dropout: float = 0.0):
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

    def _norm(self, norm: nn.Module, x: torch.Tensor, levels: Optional[torch.Tensor]) -> torch.Tensor:
        return norm(x, levels) if self.adaptive else norm(x)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, levels: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self._norm(self.norm1, x, levels)
        qk = h + pos
        x = x + self.dropout(self.self_attn(qk, qk, value=h, need_weights=False)[0])
        h = self._norm(self.norm2, x, levels)
        return x + self.dropout(self.linear2(self.dropout(F.gelu(self.linear1(h)))))


def prediction_head(dim: int, codes: int) -> nn.Sequential:
    """LayerNorm + bias-free linear map to code logits (CodeFormer's ``idx_pred_layer``)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, codes, bias=False))
