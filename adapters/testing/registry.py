"""The registry of contract checks: each check is a function registered once with :func:`contract_check`.

A check takes a deep copy of the adapter and the :class:`Context` of the run and
returns ``"ok..."``, ``"skipped: why"`` or ``"FAILED: why"`` (:func:`fail`);
:data:`adapters.testing.CHECKS` lists the registered names in registration order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

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


def close(a: torch.Tensor, b: torch.Tensor, atol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), atol=atol, rtol=atol))
