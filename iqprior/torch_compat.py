"""Every private torch API iqprior relies on, in one place (tests: ``tests/iqprior/test_torch_compat.py``).

Score conditioning (:mod:`iqprior.conditioning`) and the adapter contract
(:mod:`adapters.testing`) need a few things torch does not offer publicly. Each
is wrapped here by one small function and pinned by one test of the behaviour
we rely on, so a torch release that changes it fails that test by name instead
of a conditioning test far away. Nothing else in ``iqprior/`` or ``adapters/``
touches ``torch._C``, ``nn.Module`` slots (``_modules``, ``_parameters``,
``_buffers``) or DataParallel internals.

- :func:`graph_task_id` (``torch._C._current_graph_task_id``): which
  ``backward`` is running, so a checkpoint recomputation finds the level of the
  call it replays;
- :func:`saved_tensors_hooks_active`
  (``torch._C._autograd._top_saved_tensors_default_hooks``): whether a
  non-re-entrant activation checkpoint is recording;
- :func:`queue_engine_callback` (``Variable._execution_engine.queue_callback``):
  forget that level when the ``backward`` ends;
- :func:`module_slots`: the live dicts of an ``nn.Module``'s children,
  parameters and buffers, which the conditioned wrapper shares with the network
  it mirrors (same ``state_dict`` keys, no prefix);
- :func:`data_parallel_replica` and :func:`is_replica`
  (``Module._replicate_for_data_parallel``, ``_is_replica``): a conditioned
  ``DataParallel`` replica runs the network on its own replicated children;
- :func:`cpu_replicas` (``torch.nn.parallel.replicate`` with its private
  ``_broadcast_coalesced_reshape`` replaced): DataParallel's replicas on the CPU,
  for the contract's ``replicas`` check;
- :data:`REBUILD_TENSOR` and :func:`tensor_rebuilder`
  (``torch._utils._rebuild_tensor_v2``): the pickle global that ``torch.save``
  (and TorchScript) archives rebuild tensors with, which
  :mod:`iqprior.torchscript`'s restricted unpickler allows.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

__all__ = ["graph_task_id", "saved_tensors_hooks_active", "queue_engine_callback", "ModuleSlots", "module_slots",
           "data_parallel_replica", "is_replica", "cpu_replicas", "REBUILD_TENSOR", "tensor_rebuilder"]

REBUILD_TENSOR = ("torch._utils", "_rebuild_tensor_v2")
"""``(module, name)`` of the global a ``torch.save`` pickle rebuilds each tensor with."""


def graph_task_id() -> int:
    """The id of the autograd graph task (one ``backward`` call) running now; ``-1`` outside ``backward``."""
    return torch._C._current_graph_task_id()


def saved_tensors_hooks_active() -> bool:
    """True while default saved-tensor hooks are installed (``torch.autograd.graph.saved_tensors_hooks``,
    which non-re-entrant ``torch.utils.checkpoint`` uses while it runs its region).

    On a torch without the query (before 2.8) it answers True: the caller then treats every
    call with gradients as checkpointed (one identity autograd node per call, and outputs
    that are not tensors or containers of tensors are refused).
    """
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return top is None or top(False) is not None


def queue_engine_callback(fn: Callable[[], Any]) -> None:
    """Run ``fn`` once the current ``backward`` finishes; call it only from inside ``backward``."""
    torch.autograd.Variable._execution_engine.queue_callback(fn)


class ModuleSlots(NamedTuple):
    """An ``nn.Module``'s own (non-recursive) slots, the live objects, not copies.

    Writing into them is what ``setattr`` would do minus its checks: an entry in
    ``modules`` is a child, in ``parameters`` a parameter, in ``buffers`` a buffer
    (persistent unless its name is in ``non_persistent``).
    """

    modules: dict[str, nn.Module]
    parameters: dict[str, Any]
    buffers: dict[str, Any]
    non_persistent: set[str]


def module_slots(module: nn.Module) -> ModuleSlots:
    """The live dicts holding ``module``'s children, parameters and buffers (see :class:`ModuleSlots`)."""
    return ModuleSlots(module._modules, module._parameters, module._buffers, module._non_persistent_buffers_set)


def data_parallel_replica(module: nn.Module) -> nn.Module:
    """A shallow replica of ``module`` as ``DataParallel`` makes it: same hooks and attributes, its own
    slots dicts (so replacing a child there leaves ``module`` alone), marked :func:`is_replica`."""
    return module._replicate_for_data_parallel()


def is_replica(module: nn.Module) -> bool:
    """True for a module made by ``DataParallel``'s replicate (or :func:`cpu_replicas`)."""
    return bool(module.__dict__.get("_is_replica", False))


def cpu_replicas(module: nn.Module, n: int = 2) -> list[nn.Module]:
    """``torch.nn.parallel.replicate(module, n devices)`` on the CPU.

    The same module copies as ``DataParallel`` makes (shared hooks, parameters as
    non-leaf copies that pass gradients back to the original); only the GPU
    broadcast is replaced by CPU views.
    """
    from unittest import mock

    rep = importlib.import_module("torch.nn.parallel.replicate")

    def broadcast(tensors, devices, detach=False):
        return [[t.detach() if detach or not t.requires_grad else t.view_as(t) for t in tensors] for _ in devices]

    with mock.patch.object(rep, "_broadcast_coalesced_reshape", broadcast):
        return rep.replicate(module, list(range(n)))


def tensor_rebuilder() -> Callable[..., torch.Tensor]:
    """The function :data:`REBUILD_TENSOR` names: ``(storage, offset, size, stride, requires_grad, hooks)`` -> tensor."""
    module, name = REBUILD_TENSOR
    return getattr(importlib.import_module(module), name)
