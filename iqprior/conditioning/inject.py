"""Condition any network on a quality level without editing it.

:func:`condition` registers a forward hook on one named submodule of ``net``
and modifies that submodule's output with a :class:`ScoreEmbedding`:

- ``mode="add"`` (paper Eq. 7): ``f + e[level]`` with ``e`` of the feature's
  shape ``(C, H, W)`` (or anything that broadcasts against it).
- ``mode="adain"`` (paper App. 6.2.4, AdaIN-style): per-channel scale ``g`` and
  shift ``b`` on the instance-normalised feature. The feature keeps its
  statistics moved to ``(sigma * (1 + g), mu + b)``, i.e.
  ``f + g * (f - mu) + b``, which is exactly ``f`` at zero init.

No parameter of ``net`` changes; the wrapper only adds the embedding's, and its
``state_dict`` holds ``net``'s own keys unchanged plus ``score_embedding.*``.
"""
from __future__ import annotations

import difflib
from typing import Any, Optional

import torch
from torch import nn

from ..levels import ScoreLike
from .embedding import ScoreEmbedding

MODES = ("add", "adain")
EMBEDDING_PREFIX = "score_embedding."


def find_submodule(net: nn.Module, at: str) -> nn.Module:
    """Return ``net``'s submodule named ``at`` (as in ``named_modules``), with a "did you mean" hint."""
    modules = dict(net.named_modules())
    if at in modules and at != "":
        return modules[at]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(at, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"{type(net).__name__} has no submodule {at!r}{hint}")


def _first_tensor(output: Any) -> tuple[torch.Tensor, Any]:
    """Split a hook output into the tensor to condition and a function rebuilding the output."""
    if isinstance(output, torch.Tensor):
        return output, lambda t: t
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        rest = list(output[1:])
        kind = type(output)
        return output[0], lambda t: kind([t, *rest]) if kind is list else (t, *rest)
    raise TypeError(
        f"condition() can only modify a submodule returning a tensor (or a tuple starting with one), "
        f"got {type(output).__name__}")


class ConditionedModule(nn.Module):
    """``net`` plus a :class:`ScoreEmbedding` injected at submodule ``at``.

    Call it like ``net`` with an extra keyword ``score`` (int level, float score
    in [0, 1], or a ``(B,)`` tensor). ``score=None`` uses ``default_score``;
    calling ``net`` directly (not through this wrapper) leaves it unconditioned.
    """

    def __init__(self, net: nn.Module, at: str, embedding: ScoreEmbedding, mode: str = "add",
                 default_score: Optional[ScoreLike] = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(embedding, ScoreEmbedding):
            raise TypeError(f"embedding must be a ScoreEmbedding, got {type(embedding).__name__}")
        if mode == "adain" and (len(embedding.shape) != 2 or embedding.shape[0] != 2):
            raise ValueError(
                f"mode='adain' needs an embedding of shape (2, C) (scale, shift per channel); got "
                f"{embedding.shape}. Use ScoreEmbedding.for_adain(levels, C).")
        self.net = net
        self.score_embedding = embedding
        self.at = at
        self.mode = mode
        self.default_score = default_score
        object.__setattr__(self, "_target", find_submodule(net, at))  # not a child: no duplicate keys
        self._levels: Optional[torch.Tensor] = None
        self._handle = self._target.register_forward_hook(self._hook)
        self._register_state_dict_hook(ConditionedModule._strip_net_prefix)
        self._register_load_state_dict_pre_hook(self._add_net_prefix, with_module=False)

    # -- state dict: net's keys unchanged + score_embedding.* ----------------------------
    @staticmethod
    def _strip_net_prefix(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
            state_dict[prefix + key[len(prefix) + 4:]] = state_dict.pop(key)
        return state_dict

    def _add_net_prefix(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix):]
            if not rest.startswith(EMBEDDING_PREFIX) and not rest.startswith("net."):
                state_dict[prefix + "net." + rest] = state_dict.pop(key)

    # -- the hook -------------------------------------------------------------------------
    def _hook(self, module, inputs, output):
        levels = self._levels
        if levels is None:  # net called on its own: unconditioned
            return output
        feat, rebuild = _first_tensor(output)
        emb = self.score_embedding.weight[levels.to(self.score_embedding.weight.device)]
        emb = emb.to(dtype=feat.dtype, device=feat.device)
        if self.mode == "add":
            e = emb.view(levels.shape[0], *self.score_embedding.shape)
            if e.shape[1:] != feat.shape[1:]:
                try:
                    torch.broadcast_shapes(e.shape, feat.shape)
                except RuntimeError:
                    raise ValueError(
                        f"embedding shape {self.score_embedding.shape} does not fit the feature of "
                        f"{self.at!r}, shape {tuple(feat.shape[1:])}") from None
            return rebuild(feat + e)
        # adain: feat (B, C, *spatial)
        c = feat.shape[1]
        if self.score_embedding.shape[1] != c:
            raise ValueError(f"adain embedding has {self.score_embedding.shape[1]} channels, the feature "
                             f"of {self.at!r} has {c}")
        gamma, beta = emb.view(-1, 2, c).unbind(1)
        view = (feat.shape[0], c) + (1,) * (feat.dim() - 2)
        dims = tuple(range(2, feat.dim()))
        mu = feat.mean(dim=dims, keepdim=True) if dims else feat.mean(dim=0, keepdim=True)
        return rebuild(feat + gamma.reshape(view) * (feat - mu) + beta.reshape(view))

    def forward(self, *args, score: Optional[ScoreLike] = None, **kwargs):
        if score is None:
            score = self.default_score
        if score is None:
            raise ValueError("this conditioned network needs score= (an int level 0..9, a float score "
                             "in [0, 1], or a (B,) tensor)")
        batch = _batch_size(args, kwargs)
        self._levels = self.score_embedding.levels_of(score, batch)
        try:
            return self.net(*args, **kwargs)
        finally:
            self._levels = None

    def extra_repr(self) -> str:
        return f"at={self.at!r}, mode={self.mode!r}"


def _batch_size(args, kwargs) -> Optional[int]:
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor) and a.dim() > 0:
            return a.shape[0]
    return None


def condition(net: nn.Module, at: str, embedding: ScoreEmbedding, mode: str = "add",
              default_score: Optional[ScoreLike] = None) -> ConditionedModule:
    """Wrap ``net`` so that ``embedding`` conditions the output of submodule ``at``.

    Args:
        net: any ``nn.Module``; none of its parameters is changed or replaced.
        at: dotted submodule name as in ``net.named_modules()`` (e.g. ``"encoder"``).
        embedding: a :class:`ScoreEmbedding`; ``(C, H, W)`` for ``"add"``,
            ``(2, C)`` for ``"adain"``.
        mode: ``"add"`` (paper Eq. 7) or ``"adain"`` (App. 6.2.4).
        default_score: used when the wrapper is called without ``score=``.

    Returns:
        A :class:`ConditionedModule`; ``y = wrapped(*args, score=9, **kwargs)``.
    """
    return ConditionedModule(net, at, embedding, mode=mode, default_score=default_score)
