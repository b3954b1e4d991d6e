"""Condition any network on a quality level without editing it.

:func:`condition` registers a forward hook on named submodules of ``net`` and
modifies their outputs with a :class:`ScoreEmbedding` each:

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

The level is passed per call (:mod:`iqprior.conditioning.context`): threads
sharing one model, ``DataParallel`` replicas, DDP, ``torch.compile``,
``torch.export``, activation checkpointing and autocast each see their own call's level.

No parameter of ``net`` changes. The wrapper mirrors ``net``'s children,
parameters and buffers instead of holding ``net`` under a prefix, so its
``state_dict`` keys are ``net``'s own keys plus one key per embedding
(``score_embedding.weight``, then ``score_embedding_1.weight``...), equal to
``named_parameters()`` / ``named_buffers()``; a "+" state dict loads into the
bare network with ``strict=False``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import nn

from ..levels import ScoreLike
from . import context
from .embedding import ScoreEmbedding, auto_shape, token_layout

MODES = ("add", "adain")
EMBEDDING_NAME = "score_embedding"
EMBEDDING_PREFIX = EMBEDDING_NAME + "."


def find_submodule(net: nn.Module, at: str) -> nn.Module:
    """Return ``net``'s submodule named ``at`` (as in ``named_modules``), with a "did you mean" hint."""
    modules = dict(net.named_modules())
    if at in modules and at != "":
        return modules[at]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(at, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"{type(net).__name__} has no submodule {at!r}{hint}")


def free_embedding_name(taken: Callable[[str], bool]) -> str:
    """``score_embedding``, or the first of ``score_embedding_1``, ``_2``... not ``taken``."""
    if not taken(EMBEDDING_NAME):
        return EMBEDDING_NAME
    i = 1
    while taken(f"{EMBEDDING_NAME}_{i}"):
        i += 1
    return f"{EMBEDDING_NAME}_{i}"


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
            levels_other = emb.levels_of(score, batch)  # validates against that table too
            del levels_other
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


_Embeddings = Union[None, ScoreEmbedding, Sequence[Optional[ScoreEmbedding]]]


def _embeddings_for(ats: list[str], embedding: _Embeddings, mode: str, levels: int) -> list[ScoreEmbedding]:
    if embedding is None or isinstance(embedding, ScoreEmbedding):
        embs = [embedding] * len(ats) if len(ats) == 1 or embedding is None else None
        if embs is None:
            raise ValueError(f"{len(ats)} injection points need one ScoreEmbedding each (a list), or None "
                             "for automatic shapes")
    else:
        embs = list(embedding)
        if len(embs) != len(ats):
            raise ValueError(f"got {len(embs)} embeddings for {len(ats)} injection points {ats}")
    out = []
    for at, e in zip(ats, embs):
        if e is None:
            e = ScoreEmbedding(levels, None)
        if not isinstance(e, ScoreEmbedding):
            raise TypeError(f"embedding must be a ScoreEmbedding, got {type(e).__name__}")
        if mode == "adain" and e.shape is not None and (len(e.shape) != 2 or e.shape[0] != 2):
            raise ValueError(
                f"mode='adain' needs an embedding of shape (2, C) (scale, shift per channel); got "
                f"{e.shape} for {at!r}. Use ScoreEmbedding.for_adain(levels, C).")
        out.append(e)
    if len({id(e) for e in out}) != len(out):
        raise ValueError("each injection point needs its own ScoreEmbedding")
    return out


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

    def __init__(self, net: nn.Module, at: Union[str, Sequence[str]], embedding: _Embeddings = None,
                 mode: str = "add", default_score: Optional[ScoreLike] = None, every_call: bool = False,
                 channel_axis: Optional[int] = None, levels: int = 10):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        ats = [at] if isinstance(at, str) else list(at)
        if not ats:
            raise ValueError("at must name at least one submodule")
        embs = _embeddings_for(ats, embedding, mode, levels)
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
        for a, e in zip(ats, embs):
            name = free_embedding_name(lambda n: n in self._modules or n in self._parameters
                                       or n in self._buffers or hasattr(type(self), n))
            self._modules[name] = e
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
        self._modules.update(net._modules)
        self._parameters.update(net._parameters)
        self._buffers.update(net._buffers)
        self._non_persistent_buffers_set |= set(net._non_persistent_buffers_set)
        for s, e in zip(specs, embs):
            self._modules[s.name] = e

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
        return [self._modules[s.name] for s in self._iq_specs]

    def _network_for_call(self) -> nn.Module:
        net = self._iq_net
        if not self.__dict__.get("_is_replica", False):
            return net
        view = net._replicate_for_data_parallel()  # a DataParallel replica: run on its own children
        for k in net._modules:
            view._modules[k] = self._modules[k]
        for k in net._parameters:
            setattr(view, k, getattr(self, k))
        for k in net._buffers:
            view._buffers[k] = self._buffers[k]
        return view

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        net = self._iq_net  # keep the network's own parameter/buffer slots in step with ours
        for k in net._parameters:
            net._parameters[k] = self._parameters[k]
        for k in net._buffers:
            net._buffers[k] = self._buffers[k]
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
        embs = [self._modules[s.name] for s in self._iq_specs]
        return call_conditioned(self._network_for_call(), self._iq_key, embs, args, kwargs, score)

    def extra_repr(self) -> str:
        return ", ".join(f"{s.name}: at={s.at!r}, mode={s.mode!r}" for s in self._iq_specs)


def condition(net: nn.Module, at: Union[str, Sequence[str]], embedding: _Embeddings = None,
              mode: str = "add", default_score: Optional[ScoreLike] = None, *, every_call: bool = False,
              channel_axis: Optional[int] = None, levels: int = 10) -> ConditionedModule:
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
