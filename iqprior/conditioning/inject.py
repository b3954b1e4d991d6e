"""Condition any network on a quality level without editing it.

:func:`condition` registers a forward hook on named submodules of ``net`` and
modifies their outputs with a :class:`ScoreEmbedding` each:

``mode="add"`` (paper Eq. 7) or ``mode="adain"`` (App. 6.2.4): the arithmetic and the shapes
each accepts are in :mod:`iqprior.conditioning.ops`.

The level is passed per call (:mod:`iqprior.conditioning.context`): threads
sharing one model, ``DataParallel`` replicas, DDP, ``torch.compile``,
``torch.export``, activation checkpointing and autocast each see their own call's level.

The code is split by concern: :mod:`~iqprior.conditioning.ops` (the
arithmetic), :mod:`~iqprior.conditioning.hooks` (the forward hooks and the
call that publishes the level), :mod:`~iqprior.conditioning.checks` (argument
checks) and :mod:`~iqprior.conditioning.wrapper` (:class:`ConditionedModule`);
this module gathers their public names.

No parameter of ``net`` changes. The wrapper mirrors ``net``'s children,
parameters and buffers instead of holding ``net`` under a prefix, so its
``state_dict`` keys are ``net``'s own keys plus one key per embedding
(``score_embedding.weight``, then ``score_embedding_1.weight``...), equal to
``named_parameters()`` / ``named_buffers()``; a "+" state dict loads into the
bare network with ``strict=False``.
"""
from __future__ import annotations

from .checks import EMBEDDING_NAME, EMBEDDING_PREFIX, find_submodule, free_embedding_name
from .hooks import attach, batch_size, call_conditioned
from .ops import MODES, Injection, apply_embedding
from .wrapper import ConditionedModule, condition

__all__ = ["MODES", "EMBEDDING_NAME", "EMBEDDING_PREFIX", "Injection", "ConditionedModule", "condition",
           "find_submodule", "free_embedding_name", "attach", "call_conditioned", "batch_size", "apply_embedding"]
