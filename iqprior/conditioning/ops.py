"""The arithmetic of one injection point: how a level embedding modifies a feature.

- ``mode="add"`` (paper Eq. 7): ``f + e[level]``. The embedding has one entry
  per feature axis after the batch, each equal to the feature's or 1:
  ``(C, H, W)`` or ``(C, 1, 1)`` for ``(B, C, H, W)``, ``(C,)`` for ``(B, C)``,
  ``(1, C)`` or ``(L, C)`` for tokens ``(B, L, C)``. Any other shape (one that
  torch would broadcast along the wrong axis, e.g. ``(C,)`` against
  ``(B, C, H, W)``) is refused with the feature's shape in the message.
- ``mode="adain"`` (paper App. 6.2.4, AdaIN-style): per-channel scale ``g`` and
  shift ``b`` on the instance-normalised feature. The feature keeps its
  statistics moved to ``(sigma * (1 + g), mu + b)``, i.e.
  ``f + g * (f - mu) + b``, which is exactly ``f`` at zero init. Channels are
  axis 1, or the last axis of tokens ``(B, L, C)`` (``channel_axis`` overrides).
- ``shape=None`` embeddings take :func:`auto_shape` of the feature on the first call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .embedding import ScoreEmbedding, auto_shape, token_layout

MODES = ("add", "adain")


@dataclass(frozen=True)
class Injection:
    """Where and how one embedding conditions a network.

    ``name``: the attribute holding the embedding (its state-dict prefix);
    ``every_call``: condition every call of a module that runs several times
    per forward (default: such a second call is an error).
    """

    at: str
    name: str
    mode: str = "add"
    every_call: bool = False
    channel_axis: Optional[int] = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")


def apply_embedding(feat: torch.Tensor, emb: ScoreEmbedding, levels: torch.Tensor, scalar: bool,
                    spec: Injection) -> torch.Tensor:
    """``feat`` ``(B, ...)`` conditioned on ``levels`` ``(B,)`` by ``emb`` as ``spec`` says."""
    if not emb.is_materialized:
        emb.materialize(auto_shape(feat.shape, spec.mode, spec.channel_axis))
    n = feat.shape[0]
    if levels.shape[0] != n:
        if not scalar:
            raise ValueError(
                f"the feature of {spec.at!r} has shape {tuple(feat.shape)}: its leading axis ({n}) is not the "
                f"batch of {levels.shape[0]} scores; pass one score for the whole batch or condition a module "
                f"whose output keeps the batch axis")
        levels = levels[:1]
    e = emb.rows(levels.to(emb.weight.device)).to(dtype=feat.dtype, device=feat.device)
    if spec.mode == "add":
        shape, per_sample = emb.shape, tuple(feat.shape[1:])
        if len(shape) != len(per_sample) or any(s not in (1, f) for s, f in zip(shape, per_sample)):
            raise ValueError(
                f"embedding shape {shape} does not fit the feature of {spec.at!r}, shape {tuple(feat.shape)} "
                f"(batch first): it needs one entry per feature axis, each equal or 1, e.g. "
                f"{auto_shape(feat.shape, 'add', spec.channel_axis)} (per channel) or {per_sample} (full)")
        return feat + e
    ax = token_layout(feat.dim(), spec.channel_axis)
    c = emb.shape[1]
    if feat.shape[ax] != c:
        hint = " (tokens (B, L, C) use the last axis; pass channel_axis=1 for (B, C, L))" if feat.dim() == 3 else ""
        raise ValueError(f"adain embedding has {c} channels, the feature of {spec.at!r} has shape "
                         f"{tuple(feat.shape)} with {feat.shape[ax]} on channel axis {ax}{hint}")
    gamma, beta = e[:, 0], e[:, 1]
    view = [feat.shape[0] if e.shape[0] != 1 else 1] + [1] * (feat.dim() - 1)
    view[ax] = c
    dims = tuple(i for i in range(1, feat.dim()) if i != ax)
    mu = feat.mean(dim=dims, keepdim=True) if dims else feat.mean(dim=0, keepdim=True)
    return feat + gamma.reshape(view) * (feat - mu) + beta.reshape(view)
