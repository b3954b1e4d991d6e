"""The registry of contract checks: each check is a function registered once with :func:`contract_check`.

A check takes a deep copy of the adapter and the :class:`Context` of the run and
returns ``"ok..."``, ``"skipped: why"`` or ``"FAILED: why"`` (:func:`fail`);
:data:`adapters.testing.CHECKS` lists the registered names in registration order.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

from ..base import Adapter

CheckFn = Callable[[Adapter, "Context"], str]
REGISTRY: dict[str, CheckFn] = {}


def contract_check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as the contract check ``name``."""
    def register(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"contract check {name!r} is registered twice")
        REGISTRY[name] = fn
        return fn
    return register


@dataclass
class Context:
    """One run of :func:`~adapters.testing.check_adapter`: the input, the two levels, the tolerance..."""

    name: str
    registered: bool
    options: Mapping[str, Any]
    x: torch.Tensor
    call_kwargs: Any
    a: int
    b: int
    atol: float
    seed: int
    #: the adapter was given as an instance (its base is then not rebuilt by name: see :func:`base_of`)
    instance: bool = False


def fail(msg: str) -> str:
    """A check's result for a failure."""
    return f"FAILED: {msg}"


def forward(model: nn.Module, x: torch.Tensor, score: Any, call_kwargs: Any) -> torch.Tensor:
    """``model(x, score=score, **call_kwargs)``, its first tensor when it returns several."""
    kwargs = call_kwargs() if callable(call_kwargs) else dict(call_kwargs or {})
    out = model(x, score=score, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def randomise_embeddings(model: Adapter, seed: int, scale: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for e in model.embeddings():
            e.weight.copy_(torch.randn(e.weight.shape, generator=g) * scale)


def base_of(model: Adapter, c: Context) -> tuple[Optional[Adapter], str]:
    """The model a "+" adapter must equal at init, with its name; ``(None, "")`` for a base adapter.

    Checked by name: the registered base adapter built with the same options. Checked as an instance
    (which may have been built from a model file, as ``auto+`` is): a copy of the instance without its
    embeddings and their hooks' effect, i.e. the same network called bare.
    """
    import adapters

    if not model.is_conditioned:
        return None, ""
    if not c.instance:
        base_name = adapters.spec(c.name).base if c.registered else None
        return (adapters.create(base_name, **dict(c.options)), base_name) if base_name else (None, "")
    base = copy.deepcopy(model)
    for spec in base.injections:
        delattr(base, spec.name)
    object.__setattr__(base, "_iq_specs", ())   # a bare call: the hooks see no level and pass the feature on
    return base, f"{c.name} without its embeddings"


def close(a: torch.Tensor, b: torch.Tensor, atol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), atol=atol, rtol=atol))
