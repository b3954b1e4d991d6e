"""The forward hooks that condition a network, and the call that publishes a level for them.

The level is passed per call (:mod:`iqprior.conditioning.context`): threads
sharing one model, ``DataParallel`` replicas, DDP, ``torch.compile``,
``torch.export``, activation checkpointing and autocast each see their own call's level.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from ..levels import ScoreLike
from . import context
from .checks import find_submodule
from .embedding import ScoreEmbedding
from .ops import Injection, apply_embedding


def _first_tensor(output: Any) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
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


class _Hook:
    """Forward hook of one injection point; reads the level of the current call by ``key``.

    A small picklable object, not a bound method: ``DataParallel`` replicas and
    deep copies share it, and it finds their own call's state by key.
    """

    def __init__(self, key: int, index: int, spec: Injection):
        self.key, self.index, self.spec = key, index, spec

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        state, why = context.lookup(self.key)
        if state is None:  # the bare network, called on its own (or recomputed for such a call)
            return output
        if why is None:
            state.calls[self.index] += 1
            if state.calls[self.index] > 1 and not self.spec.every_call:
                raise RuntimeError(
                    f"the conditioned submodule {self.spec.at!r} ran {state.calls[self.index]} times in one "
                    f"forward (a shared or repeated module), so the level embedding would be added at every "
                    f"call; pass every_call=True to condition every call, or condition a module that runs once")
            if not context.tracing() and not state.checkpointed and context.in_checkpoint(state):
                state.checkpointed = True
        feat, rebuild = _first_tensor(output)
        emb = state.embeddings[self.index]
        return rebuild(apply_embedding(feat, emb, state.levels, state.scalar, self.spec))


def attach(net: nn.Module, key: int, specs: Sequence[Injection], start: int = 0) -> list[Any]:
    """Register the hooks of ``specs`` (indices ``start``...) on ``net``'s submodules; returns the handles."""
    return [find_submodule(net, s.at).register_forward_hook(_Hook(key, start + i, s))
            for i, s in enumerate(specs)]


def batch_size(args: Sequence[Any], kwargs: dict[str, Any]) -> Optional[int]:
    """Leading size of the first tensor argument with at least one dim (the batch), else ``None``."""
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor) and a.dim() > 0:
            return a.shape[0]
    return None


def call_conditioned(net: nn.Module, key: int, embeddings: list[ScoreEmbedding], args: Sequence[Any],
                     kwargs: dict[str, Any], score: ScoreLike) -> Any:
    """Run ``net(*args, **kwargs)`` with ``score`` published for the hooks of ``key``."""
    batch = batch_size(args, kwargs)
    scalar = not (isinstance(score, torch.Tensor) and score.dim() > 0
                  or hasattr(score, "ndim") and getattr(score, "ndim", 0) > 0)
    levels = embeddings[0].levels_of(score, batch)
    for emb in embeddings[1:]:
        if emb.levels != embeddings[0].levels:
            emb.levels_of(score, batch)  # validates the score against that table too (raises on a bad level)
    state = context.CallState(levels, embeddings, scalar, torch.is_grad_enabled())
    token = context.enter(key, state)
    try:
        out = net(*args, **kwargs)
    finally:
        context.leave(key, token)
    if state.checkpointed and torch.is_grad_enabled():
        out, tracked = context.keep_for_recompute(out, key, state)
        if not tracked:
            raise TypeError(
                f"the conditioned network ran inside activation checkpointing and returned a "
                f"{type(out).__name__}; the level of the call can be replayed in backward only for outputs that "
                f"are tensors, or tuples, lists, dicts or dataclasses of tensors")
    return out
