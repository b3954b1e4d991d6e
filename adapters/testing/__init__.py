"""The adapter contract, as one call: ``adapters.testing.check_adapter(name_or_model)``.

Like diffusers' ``ModelTesterMixin`` or timm's registry-wide tests: the checks
every adapter (ours, and users' own) must pass, run on a small input on the CPU.

>>> from adapters.testing import check_adapter
>>> check_adapter("codeformer+", options={"config": TINY})    # doctest: +SKIP
>>> check_adapter(MyAdapter(...))                             # raises AssertionError listing failures

Checks (:data:`CHECKS`; each is a function in :mod:`adapters.testing.checks`
registered once with :func:`~adapters.testing.registry.contract_check`):

- ``identity``: at init every level gives the same output, bitwise (and, for a
  registered "+" adapter, the base adapter's output with the same weights);
- ``keys``: ``state_dict()`` keys equal ``named_parameters()`` + persistent
  ``named_buffers()`` names; a "+" adapter's keys are the base's plus its
  embeddings' (so its file loads into the base with ``strict=False``);
- ``finetune``: after :meth:`Adapter.prepare_finetune` one loss
  (``finetune_losses``, else the output's mean square) reaches only the trained
  parameters, only the embedding rows of the levels in the batch, and one Adam
  step changes nothing else (BatchNorm statistics included);
- ``roundtrip``: ``save_pretrained`` then a strict load reproduces the output;
- ``mixed``: a batch with two levels equals, row by row, the batch at each level,
  and the levels give different outputs once the embedding is non-zero;
- ``threads``: two threads on one model at different levels, both inside the
  network at once, each get their own level's output;
- ``replicas``: ``DataParallel``-style replicas (:func:`cpu_replicas`) run in
  two threads each get their own level, and gradients reach the original embedding.

Random weights throughout: the checks are about plumbing, not image quality.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch

from ..base import Adapter
from . import checks as _checks  # noqa: F401  (registers the checks)
from .registry import REGISTRY, Context
from .threads import cpu_replicas, run_in_threads

CHECKS: tuple[str, ...] = tuple(REGISTRY)

__all__ = ["check_adapter", "cpu_replicas", "run_in_threads", "ContractReport", "CHECKS"]


@dataclass
class ContractReport:
    """``results``: check name -> ``"ok"``, ``"skipped: why"`` or ``"FAILED: why"``."""

    adapter: str
    results: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, str]:
        return {k: v for k, v in self.results.items() if v.startswith("FAILED")}

    def __str__(self) -> str:
        return "\n".join([f"contract of {self.adapter}:"] + [f"  {k:10s} {v}" for k, v in self.results.items()])


def check_adapter(model: Union[str, Adapter], *, options: Optional[Mapping[str, Any]] = None,
                  x: Optional[torch.Tensor] = None, size: Optional[int] = None,
                  call_kwargs: Union[None, Mapping[str, Any], Callable[[], Mapping[str, Any]]] = None,
                  levels: tuple[int, int] = (2, 7), checks: Sequence[str] = CHECKS, atol: float = 1e-5,
                  seed: int = 0, raise_on_failure: bool = True) -> ContractReport:
    """Run the adapter contract (:data:`CHECKS`) on ``model``.

    Args:
        model: a registered adapter name (built with ``options``) or an
            :class:`Adapter` (checked on a deep copy; it is not modified).
        x: the input, ``(2, 3, S, S)`` in [0, 1]; default random with ``S`` =
            ``size`` or the adapter's ``native_size`` or 32.
        call_kwargs: extra keyword arguments of every forward call, or a function
            returning them per call (e.g. a fresh seeded ``torch.Generator``).
        levels: two different levels used by the checks.
        checks: a subset of :data:`CHECKS`.
        raise_on_failure: raise ``AssertionError`` listing every failed check.

    Returns:
        A :class:`ContractReport`.
    """
    import adapters

    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; choose from {CHECKS}")
    name = model if isinstance(model, str) else getattr(model, "adapter_name", type(model).__name__)
    by_name = isinstance(model, str)
    if isinstance(model, str):
        torch.manual_seed(seed)
        model = adapters.create(model, **dict(options or {}))
    elif not isinstance(model, Adapter):
        raise TypeError(f"check_adapter takes an adapter name or an adapters.Adapter, got {type(model).__name__}")
    else:
        options = dict(model.options) if options is None else options
        model = copy.deepcopy(model)
    model.eval()
    registered = name in adapters.list_adapters()
    if x is None:
        s = size or model.native_size or 32
        x = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(seed))
    report = ContractReport(name)
    a, b = levels
    ctx = Context(name, registered, options or {}, x, call_kwargs, a, b, atol, seed, instance=not by_name)
    for check, run in REGISTRY.items():
        if check not in checks:
            continue
        try:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                report.results[check] = run(copy.deepcopy(model), ctx)
        except Exception as e:  # one failing check does not hide the others
            report.results[check] = f"FAILED: {type(e).__name__}: {e}"
    if raise_on_failure and report.failures:
        raise AssertionError(str(report))
    return report
