"""Reading checkpoint files safely, and loading them strictly.

Every weight or state file iqprior reads goes through :func:`safe_load`:
``torch.load(weights_only=True)`` (passed explicitly, so
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it off) plus a small explicit
allowlist (:func:`allowed_globals`):

- numpy scalars and dtypes under their numpy-1 (``numpy.core...``) and numpy-2
  (``numpy._core...``) names: training scripts save ``max_psnr`` and the like
  as ``numpy.float64`` (UnderwaterRanker's ``NU2Net_ckpt.pth``);
- training-only classes (PyTorch-Lightning callbacks, ``AttributeDict``), mapped
  to inert stand-ins that run nothing and keep nothing: DAEFR's Lightning
  checkpoint keys its ``callbacks`` dict by the ``ModelCheckpoint`` class.

A file that needs any other global is refused with one line naming the file
and the refused globals. TorchScript archives (CLIP's ``RN50.pt``, ARNIQA's
regressor) are never executed: :mod:`iqprior.torchscript` reads their tensors.
A file whose name carries torch hub's hash prefix (``name-<8 hex>.pth``) or
whose registry entry has a sha256 is checked against it first.

Each upstream project wraps its state dict differently (``params_ema``,
``params``, ``state_dict``, ``net``, raw) and some add a ``module.`` prefix:
:func:`unwrap_state_dict` takes it out of the first of the one list of wrapper
keys (:data:`~iqprior.checkpoint_format.WRAPPER_KEYS`; nested levels and a
single unnamed key as options, for files of any trainer),
:func:`prefix_variants` strips or adds prefixes, :func:`match_prefix` keeps the
variant that best matches a module's own keys, and :func:`load_strict` fails
with one error that names the missing, unexpected and mis-shaped keys.

What a file is before it is read (its format, the wrapper keys and prefixes,
the errors) lives in the torch-free :mod:`iqprior.checkpoint_format`, the
hashing in :mod:`iqprior.file_hash`; their names are re-exported here. Imports
point one way: this module uses :mod:`iqprior.torchscript` and
:mod:`iqprior.weights`, which import neither it nor each other, and use those
two torch-free modules below them (``setup.cfg``'s ``checkpoint-readers`` contract).
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import torch
from torch import nn

from . import file_hash, weights
from .checkpoint_format import (  # noqa: F401 -- re-exported: the readers' names, one import away
    PREFIXES,
    WRAPPER_KEYS,
    CheckpointError,
    CheckpointRefused,
    prefer,
    sniff,
)
from .file_hash import HUB_HASH, sha256_of  # noqa: F401 -- HUB_HASH: re-exported
from .torchscript import read_scripted_tensors
from .zip_records import archive_problem

_TORCH_LOAD = torch.load  # captured at import: iqprior.guarded may patch torch.load while building networks


class TrainingOnly:
    """Inert stand-in for a training-only class found in a checkpoint (a Lightning callback...).

    It accepts any constructor arguments and any pickled state and keeps none:
    nothing of it reaches a network.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class TrainingOnlyDict(dict):
    """Inert stand-in for a training-only ``dict`` subclass (Lightning's ``AttributeDict``)."""

    def __setstate__(self, state: Any) -> None:
        pass


#: training-only classes (fully qualified names as pickled) -> inert stand-ins
TRAINING_ONLY: dict[str, type] = {
    **{f"pytorch_lightning.callbacks.{mod}.{cls}": TrainingOnly for mod, cls in [
        ("model_checkpoint", "ModelCheckpoint"), ("early_stopping", "EarlyStopping"),
        ("lr_monitor", "LearningRateMonitor"), ("progress", "ProgressBar"),
        ("gpu_stats_monitor", "GPUStatsMonitor")]},
    **{f"lightning.pytorch.callbacks.{mod}.{cls}": TrainingOnly for mod, cls in [
        ("model_checkpoint", "ModelCheckpoint"), ("early_stopping", "EarlyStopping")]},
    "pytorch_lightning.utilities.parsing.AttributeDict": TrainingOnlyDict,
    "lightning.fabric.utilities.data.AttributeDict": TrainingOnlyDict,
}

_NUMPY_DTYPES = ("Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType",
                 "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType", "BoolDType")


def _numpy_globals() -> list[tuple[Any, str]]:
    import numpy as np

    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    out: list[tuple[Any, str]] = []
    for prefix in ("numpy.core", "numpy._core"):
        out.append((core.multiarray.scalar, f"{prefix}.multiarray.scalar"))
    out.append((np.dtype, "numpy.dtype"))
    dtypes = getattr(np, "dtypes", None)
    for name in _NUMPY_DTYPES:
        if dtypes is not None and hasattr(dtypes, name):
            out.append((getattr(dtypes, name), f"numpy.dtypes.{name}"))
    return out


def allowed_globals() -> list[tuple[Any, str]]:
    """The allowlist added to ``weights_only=True`` loading: ``(object, "qualified.name")`` pairs."""
    return _numpy_globals() + [(cls, name) for name, cls in TRAINING_ONLY.items()]


# -- integrity: torch hub's name prefix and the registry's sha256 --------------------------------
def check_integrity(path: str | os.PathLike, sha256: Optional[str] = None) -> None:
    """Raise :class:`CheckpointError` if ``path`` does not match ``sha256`` or its hub hash prefix.

    ``sha256`` defaults to the weights registry's hash for the file's name.
    """
    path = Path(path)
    if sha256 is None:
        entry = weights.REGISTRY.get(path.name)
        sha256 = entry.sha256 if entry is not None else None
    m = file_hash.HUB_HASH.search(path.name)
    if sha256 is None and m is None:
        return
    digest = sha256_of(path)
    if sha256 is not None and digest != sha256.lower():
        raise CheckpointError(f"{path}: sha256 {digest} differs from the registered {sha256} "
                              f"(a corrupt or different file; download it again)")
    if m is not None and not digest.startswith(m.group(1)):
        raise CheckpointError(f"{path}: sha256 {digest[:12]}... does not start with {m.group(1)!r} as its name says "
                              f"(a corrupt or different file; download it again)")


# -- the reader --------------------------------------------------------------------------------
def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _refused_globals(path: Path) -> list[str]:
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # not a zip checkpoint (legacy format): the names cannot be listed statically
        return []


_LEGACY_PREFIX = 64 << 20  # bytes of a non-zip file scanned for its leading pickles


def _legacy_problem(path: Path) -> Optional[str]:
    """A legacy (pre-zip) checkpoint starts with pickles (magic, protocol, system info, the object tree); torch's
    unpickler allocates a string's or a memo's declared size before reading it (5 bytes asked for 1 GB).
    Scan those pickles' opcodes first: a declared length beyond the file, or a memo index beyond the opcodes
    seen, is refused. ``None`` for a plausible file, or one whose pickles run past the prefix (zip archives are
    not passed here)."""
    import io
    import pickletools

    with open(path, "rb") as f:
        data = f.read(_LEGACY_PREFIX)
    whole = len(data) == path.stat().st_size
    stream = io.BytesIO(data)
    try:
        for _ in range(4):  # magic number, protocol version, sys info, the object tree
            for n, (op, arg, _pos) in enumerate(pickletools.genops(stream)):
                if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and not (
                        isinstance(arg, int) and 0 <= arg <= n):
                    return f"memo index {arg} at opcode {n} (a hostile pickle)"
            if stream.tell() >= len(data):
                break
    except Exception as e:  # noqa: BLE001 -- what genops cannot read, torch's reader fails on too
        text = str(e)
        if whole and "remain" in text:
            return f"it declares more data than the file holds ({_first_line(e)[:120]})"
    return None


def safe_load(path: str | os.PathLike, sha256: Optional[str] = None, check_hash: bool = True) -> Any:
    """Load ``path`` with ``weights_only=True`` and the allowlist; never runs code from the file.

    TorchScript archives give their tensors as a flat dict (see
    :func:`iqprior.torchscript.read_scripted_tensors`). Raises
    ``FileNotFoundError``, :class:`CheckpointRefused` (names the refused globals)
    or :class:`CheckpointError` (empty, truncated, corrupt, hash mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): an interrupted download?")
    if check_hash:
        check_integrity(path, sha256)
    kind = sniff(path)
    if kind == "torchscript":
        return read_scripted_tensors(path)
    problem = archive_problem(str(path), path.stat().st_size) or (None if kind == "zip" else _legacy_problem(path))
    if problem is not None:  # a compressed record inflates beyond the file: refused before torch reads it
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {problem}")
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return _TORCH_LOAD(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_globals(path) or re.findall(r"GLOBAL ([\w.]+) was not an allowed global", str(e))
        if refused or "GLOBAL" in str(e):
            names = ", ".join(dict.fromkeys(refused)) if refused else "globals outside the allowlist"
            raise CheckpointRefused(
                f"refused {path}: it needs {names} to unpickle, which weights_only=True loading does not "
                f"allow (such objects can run code); iqprior reads only tensors and plain data") from None
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint (truncated or corrupt): "
                              f"{_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 -- truncated, corrupt, too deep, too big: one CheckpointError line
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint with weights_only=True (truncated, "
                              f"corrupt, or not a checkpoint): {_first_line(e)}") from None


def read_official_checkpoint(path: str | os.PathLike, wrapper_keys: Sequence[str] = WRAPPER_KEYS
                             ) -> dict[str, torch.Tensor]:
    """Read ``path`` through :func:`safe_load` and return its (unwrapped) tensor state dict.

    The first of ``wrapper_keys`` that holds a dict is unwrapped; entries that
    are not tensors (epochs, optimizer states, callbacks, numpy scalars) are dropped.
    """
    return unwrap_state_dict(safe_load(path), wrapper_keys, source=str(path))


def unwrap_state_dict(obj: Any, wrapper_keys: Sequence[str] = WRAPPER_KEYS, source: str = "checkpoint", *,
                      levels: int = 1, single_key: bool = False) -> dict[str, torch.Tensor]:
    """Unwrap the first of ``wrapper_keys`` that holds a dict, and keep the tensor entries (keys as ``str``).

    ``levels``: how many wrappers deep to look (a Lightning ``state_dict`` holding ``params_ema``...);
    ``single_key``: a dict with one entry that is a dict is unwrapped whatever its key. The readers of
    official files unwrap one named level; ``auto``, which reads files of any trainer, three levels and
    single keys. One-line :class:`CheckpointError` when there is no dict or no tensor.
    """
    for _ in range(levels):
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in wrapper_keys if isinstance(obj.get(k), Mapping)), None)
        if inner is None and single_key and len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
            inner = next(iter(obj.values()))
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a state dict")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{source} has no tensors (top-level keys: {sorted(map(str, obj))[:8]})")
    return state


def prefix_variants(state: Mapping[str, torch.Tensor], prefixes: Sequence[str] = PREFIXES, *, every_key: bool = False,
                    add: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """``state``, then for each of ``prefixes``: its keys with the prefix stripped, and with it added.

    A prefix is stripped where any key carries it (``every_key``: only where every key does; ``auto``'s
    reading, which has no expected keys to compare with); ``add=False`` never adds one.
    """
    yield dict(state)
    for p in prefixes:
        carried = [k.startswith(p) for k in state]
        if all(carried) if every_key else any(carried):
            yield {(k[len(p):] if k.startswith(p) else k): v for k, v in state.items()}
        if add:
            yield {p + k: v for k, v in state.items()}


def match_prefix(state: Mapping[str, torch.Tensor], expected: Iterable[str],
                 prefixes: Sequence[str] = ("module.",)) -> dict[str, torch.Tensor]:
    """Strip or add one of ``prefixes`` so that ``state``'s keys best match ``expected``.

    Tries the keys as they are, with each prefix stripped, and with each prefix
    added (:func:`prefix_variants`), and keeps the variant sharing most keys with ``expected``.
    """
    expected = set(expected)
    return max(prefix_variants(state, prefixes), key=lambda c: len(expected.intersection(c)))


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
