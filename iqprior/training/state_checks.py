"""Checking a training state read from a checkpoint before any of it is applied.

``--resume`` must never leave a run half-restored: every part of
``training_state.pt`` (optimizer, scheduler, grad scaler, RNG states, step)
is checked against the live objects first, and only a state whose every part
fits is applied. Each check raises :class:`iqprior.checkpoint.CheckpointError`
with one line naming the part. Schedulers are restored key by key: only the
keys their own ``state_dict()`` has, with the same value types, so a file
cannot set other attributes (``LRScheduler.load_state_dict`` would update
``__dict__`` with whatever the file holds).
"""
from __future__ import annotations

import numbers
from typing import Any, Mapping

import torch

__all__ = ["check_training_state", "apply_training_state", "check_rng_state"]


def _error(msg: str) -> Exception:
    from iqprior.checkpoint import CheckpointError
    return CheckpointError(msg)


def _same_kind(new: Any, old: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(new, bool) and isinstance(old, bool)
    if isinstance(old, numbers.Number):
        return isinstance(new, numbers.Number) and not isinstance(new, complex)
    if old is None:
        return True  # optional values (a scheduler's _get_lr_called_within_step...) may be set
    if isinstance(old, torch.Tensor):
        return isinstance(new, torch.Tensor) and new.shape == old.shape
    if isinstance(old, (list, tuple)):
        return isinstance(new, (list, tuple)) and len(new) == len(old) and all(
            _same_kind(a, b) for a, b in zip(new, old))
    if isinstance(old, Mapping):
        return isinstance(new, Mapping)
    return isinstance(new, type(old))


def _check_optimizer(name: str, opt: torch.optim.Optimizer, sd: Any) -> None:
    own = opt.state_dict()
    if not isinstance(sd, Mapping) or not isinstance(sd.get("param_groups"), list) \
            or not isinstance(sd.get("state"), Mapping):
        raise _error(f"{name}: not an optimizer state (no param_groups / state)")
    groups = sd["param_groups"]
    if len(groups) != len(own["param_groups"]):
        raise _error(f"{name}: {len(groups)} parameter group(s) saved, the optimizer has {len(own['param_groups'])}")
    shapes: dict[Any, tuple] = {}
    params = [p for g in opt.param_groups for p in g["params"]]
    ids = [i for g in own["param_groups"] for i in g["params"]]
    for i, p in zip(ids, params):
        shapes[i] = tuple(p.shape)
    for k, (g, mine) in enumerate(zip(groups, own["param_groups"])):
        if not isinstance(g, Mapping) or not isinstance(g.get("params"), list) \
                or len(g["params"]) != len(mine["params"]):
            raise _error(f"{name}: parameter group {k} does not match the optimizer's ({len(mine['params'])} params)")
        for key, value in mine.items():
            if key != "params" and key in g and not _same_kind(g[key], value):
                raise _error(f"{name}: parameter group {k} has {key}={g[key]!r:.40}, not a "
                             f"{type(value).__name__} like the optimizer's")
    saved_ids = [i for g in groups for i in g["params"]]
    for pid, st in sd["state"].items():
        if pid not in saved_ids or not isinstance(st, Mapping):
            raise _error(f"{name}: state for unknown parameter {pid!r:.40}")
        shape = shapes.get(ids[saved_ids.index(pid)])
        for key, v in st.items():
            if isinstance(v, torch.Tensor) and v.dim() > 0 and tuple(v.shape) != shape:
                raise _error(f"{name}: {key} of parameter {pid} has shape {tuple(v.shape)}, the parameter {shape}")
    from .optimizer_checks import check_optimizer_contents

    check_optimizer_contents(name, opt, sd)  # keys, kinds and finiteness, as the optimizer itself writes them


def _check_keyed(name: str, obj: Any, sd: Any) -> dict:
    """Keys of ``sd`` restricted to ``obj.state_dict()``'s, value kinds matching; the dict to apply."""
    own = obj.state_dict()
    if not isinstance(sd, Mapping):
        raise _error(f"{name}: not a state dict ({type(sd).__name__})")
    unknown = sorted(str(k) for k in sd if k not in own)
    if unknown:
        raise _error(f"{name}: unknown key(s) {', '.join(unknown)[:120]} (only {', '.join(own)[:120]} are restored)")
    for key, value in sd.items():
        if not _same_kind(value, own[key]):
            raise _error(f"{name}: {key}={value!r:.40} is not a {type(own[key]).__name__} like the live value")
    return dict(sd)


def check_rng_state(state: Any) -> None:
    """Raise one CheckpointError unless ``state`` is a complete RNG state as :func:`rng_state` writes it."""
    import random

    import numpy as np

    if not isinstance(state, Mapping):
        raise _error("rng: not a dict")
    py = state.get("python")
    if not (isinstance(py, (list, tuple)) and len(py) == 3 and isinstance(py[1], torch.Tensor)
            and py[1].shape == (625,) and isinstance(py[0], int)):
        raise _error("rng: the Python state is not 3 entries with 625 words")
    n = state.get("numpy")
    if not (isinstance(n, Mapping) and isinstance(n.get("key"), torch.Tensor) and n["key"].shape == (624,)
            and isinstance(n.get("pos"), int) and 0 <= n["pos"] <= 624):
        raise _error("rng: the NumPy state is not a 624-word key and a position")
    t = state.get("torch")
    if not (isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.shape == torch.get_rng_state().shape):
        raise _error("rng: the torch state does not have the size of this build's generator state")
    try:  # both setters check more (word ranges); run them on throwaway generators
        random.Random().setstate((py[0], tuple(int(v) for v in py[1].tolist()), py[2]))
        np.random.RandomState().set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"],
                                           n.get("has_gauss", 0), n.get("cached", 0.0)))
        torch.Generator().set_state(t)
    except (TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise _error(f"rng: {str(e).strip()[:200]}") from None


def check_training_state(state: Any, objects: Mapping[str, Any], step: int | None = None) -> dict[str, dict]:
    """Check every part of ``state`` against ``objects``; return the keyed parts to apply (schedulers, scalers)."""
    if not isinstance(state, Mapping):
        raise _error("not a training state")
    s = state.get("step")
    if not (isinstance(s, int) and not isinstance(s, bool) and s >= 0):
        raise _error(f"step {s!r:.40} is not a non-negative int")
    if step is not None and s != step:
        raise _error(f"step {s} differs from the folder's step {step}")
    check_rng_state(state.get("rng"))
    keyed: dict[str, dict] = {}
    for name, obj in objects.items():
        if obj is None:
            continue
        if name not in state:
            raise _error(f"{name}: missing from the training state")
        if isinstance(obj, torch.optim.Optimizer):
            _check_optimizer(name, obj, state[name])
        else:
            keyed[name] = _check_keyed(name, obj, state[name])
    return keyed


def apply_training_state(state: Mapping, objects: Mapping[str, Any], keyed: Mapping[str, dict]) -> None:
    """Load checked optimizer states; restore the other objects' checked keys only."""
    from torch.optim.lr_scheduler import LRScheduler

    for name, obj in objects.items():
        if obj is None:
            continue
        if isinstance(obj, torch.optim.Optimizer):
            obj.load_state_dict(state[name])
        elif isinstance(obj, LRScheduler):
            for key, value in keyed[name].items():  # the keys its own state_dict() names, nothing else
                setattr(obj, key, value)
        else:
            obj.load_state_dict(keyed[name])
