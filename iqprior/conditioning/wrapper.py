"""The conditioned wrapper: ``net`` plus level embeddings, with ``net``'s own state-dict keys.

No parameter of ``net`` changes. The wrapper mirrors ``net``'s children,
parameters and buffers instead of holding ``net`` under a prefix, so its
``state_dict`` keys are ``net``'s own keys plus one key per embedding
(``score_embedding.weight``, then ``score_embedding_1.weight``...), equal to
``named_parameters()`` / ``named_buffers()``; a "+" state dict loads into the
bare network with ``strict=False``. The mirroring writes ``nn.Module``'s slots
through :func:`iqprior.torch_compat.module_slots`.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from torch import nn

from .. import torch_compat
from ..levels import DEFAULT_LEVELS, ScoreLike
from . import context
from .checks import Embeddings, embeddings_for, find_submodule, free_embedding_name
from .embedding import ScoreEmbedding
from .hooks import attach, call_conditioned
from .ops import MODES, Injection


class ConditionedModule(nn.Module):
    """``net`` plus :class:`ScoreEmbedding` s injected at submodules ``at``.

    Call it like ``net`` with an extra keyword ``score`` (int level, float score
    in [0, 1], or a ``(B,)`` tensor). ``score=None`` uses ``default_score``;
    calling ``net`` directly (not through this wrapper) leaves it unconditioned.

    The wrapper mirrors ``net``'s children, parameters and buffers (same
    objects), so ``state_dict()`` / ``named_parameters()`` keys are ``net``'s
    plus the embeddings'. ``wrapped.net`` is the wrapped network (unless it has a
    child named ``net``: then ``wrapped.net`` is that child, as the keys say, and
    :meth:`wrapped_network` returns the network).
    """

    def __init__(self, net: nn.Module, at: Union[str, Sequence[str]], embedding: Embeddings = None,
                 mode: str = "add", default_score: Optional[ScoreLike] = None, every_call: bool = False,
                 channel_axis: Optional[int] = None, levels: int = DEFAULT_LEVELS):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        ats = [at] if isinstance(at, str) else list(at)
        if not ats:
            raise ValueError("at must name at least one submodule")
        embs = embeddings_for(ats, embedding, mode, levels)
        inner_specs: list[Injection] = []
        inner_embs: list[ScoreEmbedding] = []
        if isinstance(net, ConditionedModule):  # a condition of a condition: one wrapper, every point
            inner = net
            net = inner.wrapped_network()
            inner_specs = list(inner._iq_specs)
            inner_embs = inner.embeddings()
            if default_score is None:
                default_score = inner._iq_default
        for a in ats:
            find_submodule(net, a)
        self._setup(net, context.new_key(), inner_specs, inner_embs, default_score)
        new_specs = []
        own = torch_compat.module_slots(self)
        for a, e in zip(ats, embs):
            name = free_embedding_name(lambda n: n in own.modules or n in own.parameters
                                       or n in own.buffers or hasattr(type(self), n))
            own.modules[name] = e
            new_specs.append(Injection(a, name, mode, every_call, channel_axis))
        object.__setattr__(self, "_iq_specs", tuple(inner_specs + new_specs))
        object.__setattr__(self, "_iq_handles", attach(net, self._iq_key, self._iq_specs))

    def _setup(self, net: nn.Module, key: int, specs: Sequence[Injection], embs: Sequence[ScoreEmbedding],
               default_score: Optional[ScoreLike]) -> None:
        object.__setattr__(self, "_iq_net", net)
        object.__setattr__(self, "_iq_key", key)
        object.__setattr__(self, "_iq_default", default_score)
        object.__setattr__(self, "_iq_specs", tuple(specs))
        object.__setattr__(self, "_iq_handles", [])
        self.training = net.training
        own, theirs = torch_compat.module_slots(self), torch_compat.module_slots(net)
        own.modules.update(theirs.modules)
        own.parameters.update(theirs.parameters)
        own.buffers.update(theirs.buffers)
        own.non_persistent.update(theirs.non_persistent)
        for s, e in zip(specs, embs):
            own.modules[s.name] = e

    @classmethod
    def view(cls, net: nn.Module, key: int, specs: Sequence[Injection], embeddings: Sequence[ScoreEmbedding],
             default_score: Optional[ScoreLike] = None) -> ConditionedModule:
        """A wrapper around injection points already attached to ``net`` under ``key`` (no new hooks)."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._setup(net, key, specs, embeddings, default_score)
        return self

    # -- the wrapped network --------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "net":
                return self.__dict__["_iq_net"]
            if name in ("at", "mode") and "_iq_specs" in self.__dict__:
                specs = self.__dict__["_iq_specs"]
                vals = [getattr(s, name) for s in specs]
                return vals[0] if len(vals) == 1 else vals
            if name == "default_score":
                return self.__dict__["_iq_default"]
            raise

    def wrapped_network(self) -> nn.Module:
        """The network this wrapper conditions (its hooks are on its submodules)."""
        return self.__dict__["_iq_net"]

    @property
    def injections(self) -> tuple[Injection, ...]:
        """One :class:`Injection` per conditioned submodule."""
        return self._iq_specs

    def embeddings(self) -> list[ScoreEmbedding]:
        """The embeddings, in the order of :attr:`injections`."""
        modules = torch_compat.module_slots(self).modules
        return [modules[s.name] for s in self._iq_specs]

    def _network_for_call(self) -> nn.Module:
        net = self._iq_net
        if not torch_compat.is_replica(self):
            return net
        view = torch_compat.data_parallel_replica(net)  # a DataParallel replica: run on its own children
        own, theirs, mine = (torch_compat.module_slots(m) for m in (view, net, self))
        for k in theirs.modules:
            own.modules[k] = mine.modules[k]
        for k in theirs.parameters:
            setattr(view, k, getattr(self, k))
        for k in theirs.buffers:
            own.buffers[k] = mine.buffers[k]
        return view

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        # keep the network's own parameter/buffer slots in step with ours
        theirs, mine = torch_compat.module_slots(self._iq_net), torch_compat.module_slots(self)
        for k in theirs.parameters:
            theirs.parameters[k] = mine.parameters[k]
        for k in theirs.buffers:
            theirs.buffers[k] = mine.buffers[k]
        return self

    def train(self, mode: bool = True) -> ConditionedModule:
        super().train(mode)
        self._iq_net.training = mode
        return self

    def forward(self, *args: Any, score: Optional[ScoreLike] = None, **kwargs: Any) -> Any:
        if score is None:
            score = self._iq_default
        if score is None:
            raise ValueError("this conditioned network needs score= (an int level 0..9, a float score "
                             "in [0, 1], or a (B,) tensor)")
        embs = self.embeddings()
        return call_conditioned(self._network_for_call(), self._iq_key, embs, args, kwargs, score)

    def extra_repr(self) -> str:
        return ", ".join(f"{s.name}: at={s.at!r}, mode={s.mode!r}" for s in self._iq_specs)


def condition(net: nn.Module, at: Union[str, Sequence[str]], embedding: Embeddings = None,
              mode: str = "add", default_score: Optional[ScoreLike] = None, *, every_call: bool = False,
              channel_axis: Optional[int] = None, levels: int = DEFAULT_LEVELS) -> ConditionedModule:
    """Wrap ``net`` so that a level embedding conditions the output of submodule(s) ``at``.

    Args:
        net: any ``nn.Module`` (or a :class:`ConditionedModule`: its points are
            kept and the new ones added); none of its parameters is changed.
        at: dotted submodule name as in ``net.named_modules()`` (e.g. ``"encoder"``),
            or a list of names (one embedding each).
        embedding: a :class:`ScoreEmbedding` (a list: one per ``at``); ``None``
            = ``ScoreEmbedding(levels, shape=None)``, whose shape is taken from
            the feature on the first call (:func:`auto_shape`: one value per channel).
        mode: ``"add"`` (paper Eq. 7) or ``"adain"`` (App. 6.2.4).
        default_score: used when the wrapper is called without ``score=``.
        every_call: condition every call of a module that runs several times
            per forward (default: a second call in one forward raises).
        channel_axis: the feature's channel axis (default 1; the last axis of
            3-D token features ``(B, L, C)``).
        levels: number of levels of automatic embeddings.

    Returns:
        A :class:`ConditionedModule`; ``y = wrapped(*args, score=9, **kwargs)``.
    """
    return ConditionedModule(net, at, embedding, mode=mode, default_score=default_score, every_call=every_call,
                             channel_axis=channel_axis, levels=levels)
