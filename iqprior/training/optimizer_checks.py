"""What a saved optimizer state holds, checked against what its optimizer would write.

:mod:`iqprior.training.state_checks` checks the layout (groups, parameter
counts, state shapes). This module checks the contents, before anything is
applied, so that a bad state falls back to the previous checkpoint instead of
failing at the first step or training silently into NaN weights:

- every number of a parameter group (``lr``, ``betas``, ``eps``,
  ``weight_decay``...) is finite, and ``lr`` is not negative;
- each parameter's state has the keys the optimizer itself writes for that
  group (a probe: the same optimizer class and hyper-parameters stepped once on
  a one-element parameter), each value of the same kind (a tensor where it
  writes a tensor, a number where it writes a number);
- every tensor and number in it is finite, and ``step`` is not negative.

Optimizers that cannot be probed on the CPU (``fused=True`` on CUDA, LBFGS,
which needs a closure) get the finiteness checks only.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional

import torch

__all__ = ["check_optimizer_contents"]


def _error(msg: str) -> Exception:
    from iqprior.checkpoint import CheckpointError
    return CheckpointError(msg)


def _finite_numbers(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, numbers.Number):
        return not isinstance(value, complex) and math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite_numbers(v) for v in value)
    if isinstance(value, torch.Tensor):
        return not (value.is_floating_point() or value.is_complex()) or bool(torch.isfinite(value).all())
    return True


def _probe(opt: torch.optim.Optimizer, group: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """``{state key: kind}`` the optimizer writes for one parameter of ``group``; ``None`` if it cannot be probed."""
    hyper = {k: v for k, v in group.items() if k != "params"}
    try:
        p = torch.zeros(1, requires_grad=True)
        probe = type(opt)([{**hyper, "params": [p]}])
        p.grad = torch.zeros(1)
        probe.step()
        return {k: _kind(v) for k, v in probe.state[p].items()}
    except Exception:  # noqa: BLE001 -- fused/CUDA-only options, a closure needed, a custom optimizer
        return None


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return "scalar tensor" if value.dim() == 0 else "tensor"
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return "number"
    return type(value).__name__


def check_optimizer_contents(name: str, opt: torch.optim.Optimizer, sd: Mapping[str, Any]) -> None:
    """Raise one ``CheckpointError`` unless ``sd``'s hyper-parameters and per-parameter states are what ``opt``
    would write, finite (call after the layout checks of :mod:`iqprior.training.state_checks`)."""
    groups = sd["param_groups"]
    owner: dict[Any, int] = {}
    for k, g in enumerate(groups):
        for key, value in g.items():
            if key != "params" and not _finite_numbers(value):
                raise _error(f"{name}: parameter group {k} has {key}={value!r:.40}, not finite")
        lr = g.get("lr")
        if isinstance(lr, numbers.Number) and not isinstance(lr, bool) and lr < 0:
            raise _error(f"{name}: parameter group {k} has lr={lr!r:.40}, below 0")
        owner.update((pid, k) for pid in g["params"])
    probes: dict[int, Optional[dict[str, str]]] = {}
    for pid, st in sd["state"].items():
        k = owner[pid]
        if k not in probes:
            probes[k] = _probe(opt, groups[k])
        expected = probes[k]
        if expected is not None and set(st) != set(expected):
            missing, extra = sorted(set(expected) - set(st)), sorted(map(str, set(st) - set(expected)))
            raise _error(f"{name}: the state of parameter {pid} has keys {sorted(map(str, st))}, the optimizer "
                         f"writes {sorted(expected)} (missing {missing}, unexpected {extra})")
        for key, value in st.items():
            if expected is not None and _kind(value) != expected[key]:
                raise _error(f"{name}: {key} of parameter {pid} is a {_kind(value)} ({value!r:.40}), the optimizer "
                             f"writes a {expected[key]}")
            if not _finite_numbers(value):
                raise _error(f"{name}: {key} of parameter {pid} is not finite")
            if key == "step" and float(value) < 0:
                raise _error(f"{name}: step of parameter {pid} is {float(value)}, below 0")
