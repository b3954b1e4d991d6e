"""Per-call condition levels: what a conditioned network's hooks read while it runs.

The level of one call must reach a hook on an inner submodule without being
kept on the module, or two threads sharing a model, ``DataParallel`` replicas
(whose hooks are the original's) and re-entrant calls would see each other's
level. The wrapper's ``forward`` publishes a :class:`CallState` under its
``key`` (an int shared by the wrapper, its hooks, its replicas and its deep
copies) for the duration of the call:

- eagerly, in a :class:`contextvars.ContextVar`: private to the thread (and
  asyncio task) that made the call;
- while ``torch.compile`` / ``torch.export`` trace, in a plain dict that the
  tracer follows as a side effect (``ContextVar.set`` would break the graph);
  the compiled graph itself carries the embedding as a tensor, so running it
  from several threads is safe.

Activation checkpointing re-runs part of the network during ``backward``,
after the call has returned. When the hooks see that they run inside a
checkpointed region, the call's outputs pass through an identity autograd node
that, when ``backward`` reaches it, publishes the call's state for that
backward pass (keyed by autograd's graph-task id) so the recomputation adds
the same embedding.
"""
from __future__ import annotations

import contextvars
import dataclasses
import itertools
from types import MappingProxyType
from typing import Any, Mapping, Optional

import torch

from .. import torch_compat

_ACTIVE: contextvars.ContextVar[Mapping[int, CallState]] = contextvars.ContextVar(
    "iqprior_condition", default=MappingProxyType({}))
_TRACED: dict[int, CallState] = {}
_BACKWARD: dict[int, dict[int, CallState]] = {}
_KEYS = itertools.count(1)

RECOMPUTE = "recompute"


def new_key() -> int:
    """A fresh key for one conditioned network (its hooks and replicas share it)."""
    return next(_KEYS)


class CallState:
    """The levels of one call and the embeddings to index, one per injection point.

    ``levels``: ``(B,)`` long; ``scalar``: one level for the whole batch (so a
    feature whose leading axis is not the batch, e.g. windows, can take it);
    ``calls``: how often each injection point ran in this call.
    """

    def __init__(self, levels: torch.Tensor, embeddings: list, scalar: bool, grad_enabled: bool):
        self.levels = levels
        self.embeddings = embeddings
        self.scalar = scalar
        self.grad_enabled = grad_enabled
        self.calls = [0] * len(embeddings)
        self.checkpointed = False


def tracing() -> bool:
    """True while torch.compile (dynamo) or torch.export traces."""
    return torch.compiler.is_compiling()


def lookup(key: int) -> tuple[Optional[CallState], Optional[str]]:
    """``(state, None)`` inside a call, ``(state, RECOMPUTE)`` in a checkpoint recomputation, else
    ``(None, None)`` (the bare network runs unconditioned)."""
    if tracing():
        return _TRACED.get(key), None
    state = _ACTIVE.get().get(key)
    if state is not None:
        return state, None
    gid = torch_compat.graph_task_id()
    if gid != -1:
        state = _BACKWARD.get(gid, {}).get(key)
        if state is not None:
            return state, RECOMPUTE
    return None, None


def enter(key: int, state: CallState) -> Any:
    """Publish ``state`` under ``key``; returns the token for :func:`leave`."""
    if tracing():
        prev = _TRACED.get(key)
        _TRACED[key] = state
        return ("traced", prev)
    return ("eager", _ACTIVE.set(MappingProxyType({**_ACTIVE.get(), key: state})))


def leave(key: int, token: Any) -> None:
    kind, value = token
    if kind == "traced":
        if value is None:
            _TRACED.pop(key, None)
        else:
            _TRACED[key] = value
    else:
        _ACTIVE.reset(value)


def in_checkpoint(state: CallState) -> bool:
    """Whether a hook runs inside an activation-checkpointed region of ``state``'s call."""
    if state.grad_enabled and not torch.is_grad_enabled():
        return True  # re-entrant checkpoint runs its region under no_grad
    return torch_compat.saved_tensors_hooks_active()  # non-re-entrant checkpoint installs saved-tensor hooks


class _KeepForRecompute(torch.autograd.Function):
    """Identity on the call's outputs; its backward publishes the call's state for recomputation."""

    @staticmethod
    def forward(ctx, key, state, *tensors):  # type: ignore[override]
        ctx.key, ctx.state = key, state
        return tuple(t.view_as(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        gid = torch_compat.graph_task_id()
        table = _BACKWARD.get(gid)
        if table is None:
            table = _BACKWARD[gid] = {}
            torch_compat.queue_engine_callback(lambda: _BACKWARD.pop(gid, None))
        table[ctx.key] = ctx.state
        return (None, None, *grads)


def keep_for_recompute(output: Any, key: int, state: CallState) -> tuple[Any, bool]:
    """Route the tensors of ``output`` through :class:`_KeepForRecompute`; ``(output, tracked)``.

    ``output``: a tensor, or a tuple/list/dict/dataclass holding tensors;
    ``tracked`` is False for any other type.
    """
    if isinstance(output, torch.Tensor):
        items: list[tuple[Any, Any]] = [(None, output)]
    elif isinstance(output, (tuple, list)):
        items = list(enumerate(output))
    elif isinstance(output, dict):
        items = list(output.items())
    elif dataclasses.is_dataclass(output) and not isinstance(output, type):
        items = [(f.name, getattr(output, f.name)) for f in dataclasses.fields(output)]
    else:
        return output, False
    picked = [(k, v) for k, v in items if isinstance(v, torch.Tensor) and v.requires_grad]
    if not picked:
        return output, True
    new = dict(zip([k for k, _ in picked], _KeepForRecompute.apply(key, state, *[v for _, v in picked])))
    if isinstance(output, torch.Tensor):
        return new[None], True
    if isinstance(output, (tuple, list)):
        vals = [new.get(i, v) for i, v in items]
        if hasattr(output, "_fields"):
            return type(output)(*vals), True
        return type(output)(vals), True
    if isinstance(output, dict):
        return type(output)({k: new.get(k, v) for k, v in items}), True
    return dataclasses.replace(output, **{k: new[k] for k, _ in picked}), True
