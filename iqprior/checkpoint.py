"""Reading official checkpoint files and loading them strictly.

Official ``.pth``/``.ckpt`` files are read with ``torch.load(weights_only=True)``
only. Each upstream project wraps its state dict differently (``params_ema``,
``params``, ``state_dict``, ``net``, raw) and some add a ``module.`` prefix;
:func:`read_official_checkpoint` unwraps, :func:`match_prefix` maps keys onto a
module's own, and :func:`load_strict` fails with one error that names the
missing, unexpected and mis-shaped keys.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "net", "model")


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or does not fit the network it is loaded into."""


def read_official_checkpoint(path: str | os.PathLike, wrapper_keys: Sequence[str] = WRAPPER_KEYS
                             ) -> dict[str, torch.Tensor]:
    """Read ``path`` with ``weights_only=True`` and return its (unwrapped) tensor state dict.

    The first of ``wrapper_keys`` that holds a dict is unwrapped; entries that
    are not tensors (epochs, optimizer scalars) are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): an interrupted download?")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot read {path} as a PyTorch checkpoint with weights_only=True (truncated, corrupt, "
            f"or holds objects other than tensors): {first}") from None
    return unwrap_state_dict(obj, wrapper_keys, source=str(path))


def unwrap_state_dict(obj, wrapper_keys: Sequence[str] = WRAPPER_KEYS, source: str = "checkpoint"
                      ) -> dict[str, torch.Tensor]:
    """Unwrap the first matching wrapper key and keep the tensor entries."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a state dict")
    for key in wrapper_keys:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{source} has no tensors (top-level keys: {sorted(obj)[:8]})")
    return state


def match_prefix(state: Mapping[str, torch.Tensor], expected: Iterable[str],
                 prefixes: Sequence[str] = ("module.",)) -> dict[str, torch.Tensor]:
    """Strip or add one of ``prefixes`` so that ``state``'s keys best match ``expected``.

    Tries the keys as they are, with each prefix stripped, and with each prefix
    added, and keeps the variant sharing most keys with ``expected``.
    """
    expected = set(expected)
    candidates = [dict(state)]
    for p in prefixes:
        if any(k.startswith(p) for k in state):
            candidates.append({(k[len(p):] if k.startswith(p) else k): v for k, v in state.items()})
        candidates.append({p + k: v for k, v in state.items()})
    return max(candidates, key=lambda c: len(expected.intersection(c)))


def _preview(keys: Sequence[str], n: int = 5) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise one :class:`CheckpointError` if ``state`` does not fit ``module`` exactly."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return
    parts = [f"{source} does not fit {type(module).__name__} ({len(own)} keys expected, {len(state)} found)"]
    if missing:
        parts.append(f"missing {len(missing)}: {_preview(missing)}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)}: {_preview(unexpected)}")
    if shapes:
        parts.append(f"wrong shape {len(shapes)} (file vs model): {_preview(shapes, 3)}")
    if len(missing) > 0.9 * len(own):
        parts.append("is this the checkpoint of another model?")
    raise CheckpointError("; ".join(parts))


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """``module.load_state_dict(state, strict=True)`` with a readable error first."""
    check_state_dict(module, state, source)
    module.load_state_dict(state, strict=True)
