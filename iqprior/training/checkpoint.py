"""Training checkpoints: weights as safetensors, state as a separate file, both atomic.

A checkpoint directory ``step_000123/`` holds

- ``model.safetensors``: the trained module's ``state_dict`` (tensors only);
- ``training_state.pt``: step, optimizer/scheduler/scaler states and the RNG
  states of Python, NumPy and torch (CPU and CUDA), so ``--resume`` continues
  bit-exactly. It is our own file, written with ``torch.save`` and read back
  through :func:`iqprior.checkpoint.safe_load` (``weights_only=True``: tensors,
  numbers, strings, lists and dicts only).

Each file is written to a temporary name and renamed, and the directory is
completed by a ``DONE`` marker last, so a crash never leaves a checkpoint that
looks complete but is not. A checkpoint that is complete but unreadable
(corrupt, truncated, hostile) is skipped by :func:`resume`, which names it in
one line and falls back to the previous complete one (trainers keep at least
the last two).
"""
from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from ..io import atomic_path, atomic_write_bytes

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
DONE_FILE = "DONE"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": list(_py_state_to_list(random.getstate())),
        "numpy": {"key": torch.from_numpy(np_state[1].copy()), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_py_state_from_list(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _py_state_to_list(s):
    version, internal, gauss = s
    return [version, torch.tensor(internal, dtype=torch.int64), gauss]


def _py_state_from_list(s):
    version, internal, gauss = s
    return (version, tuple(int(v) for v in internal.tolist()), gauss)


def save_checkpoint(directory: str | os.PathLike, model: nn.Module, step: int,
                    optimizers: Optional[dict[str, Any]] = None, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write ``directory/step_{step:06d}/`` (weights, training state, DONE) atomically; return it."""
    from safetensors.torch import save_file

    out = Path(directory) / f"step_{step:06d}"
    out.mkdir(parents=True, exist_ok=True)
    (out / DONE_FILE).unlink(missing_ok=True)
    module = model.module if hasattr(model, "module") else model  # DDP
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    with atomic_path(out / MODEL_FILE) as tmp:
        save_file(tensors, str(tmp))
    state = {"step": int(step), "rng": rng_state(), "extra": extra or {}}
    for name, obj in (optimizers or {}).items():
        if obj is not None:
            state[name] = obj.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out / STATE_FILE, buf.getvalue())
    atomic_write_bytes(out / DONE_FILE, str(step).encode())
    return out


def complete_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete ``step_*`` directories (with ``DONE``), newest first; ``directory`` itself if it is one."""
    directory = Path(directory)
    if (directory / DONE_FILE).is_file():
        return [directory]
    found = []
    if directory.is_dir():
        for p in directory.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and (p / DONE_FILE).is_file():
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def prune_checkpoints(directory: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``max(2, keep_last)`` complete ``step_*`` folders (steps compared as numbers).

    Incomplete folders (no ``DONE``) older than the newest complete one are
    crashed writes and go too; they never count toward ``keep_last``.
    Returns the deleted folders.
    """
    import shutil

    complete = complete_checkpoints(directory)
    if keep_last <= 0 or not complete or complete[0] == Path(directory):
        return []
    newest = int(_STEP_DIR.match(complete[0].name).group(1))
    stale = [p for p in Path(directory).iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()
             and not (p / DONE_FILE).is_file() and int(m.group(1)) < newest]
    gone = complete[max(2, keep_last):] + stale
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def latest_checkpoint(directory: str | os.PathLike) -> Optional[Path]:
    """The complete ``step_*`` directory with the highest step, or ``None``."""
    found = complete_checkpoints(directory)
    return found[0] if found else None


def read_model_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` in a checkpoint directory (or the file itself)."""
    from safetensors.torch import load_file

    from iqprior.checkpoint import CheckpointError

    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing")
    try:
        return load_file(str(file))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"cannot read {file} (truncated or corrupt safetensors): "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None


def read_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """``training_state.pt`` of a checkpoint directory, read through the safe reader."""
    from iqprior.checkpoint import CheckpointError, safe_load

    file = Path(path) / STATE_FILE
    state = safe_load(file)
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or "rng" not in state:
        raise CheckpointError(f"{file} is not an iqprior training state (no step / rng)")
    return state


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizers: Optional[dict[str, Any]] = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore weights, optimizer/scheduler/scaler states and RNG from a checkpoint directory; return its state.

    Every part is read and checked (weights against the model, optimizer
    groups and state shapes, scheduler and scaler keys and types, RNG states,
    the step against the folder name) before anything is changed, so a bad
    checkpoint raises one :class:`iqprior.checkpoint.CheckpointError` and
    leaves ``model`` and the optimizers as they were.
    """
    from iqprior.checkpoint import check_state_dict

    from .state_checks import apply_training_state, check_training_state

    path = Path(path)
    tensors = read_model_weights(path)
    state = read_training_state(path)
    module = model.module if hasattr(model, "module") else model
    check_state_dict(module, tensors, source=str(path / MODEL_FILE))
    m = _STEP_DIR.match(path.name)
    keyed = check_training_state(state, optimizers or {}, int(m.group(1)) if m else None)
    module.load_state_dict(tensors, strict=True)
    apply_training_state(state, optimizers or {}, keyed)
    if restore_rng:
        set_rng_state(state["rng"])
    return state


def resume(directory: str | os.PathLike, model: nn.Module, optimizers: Optional[dict[str, Any]] = None,
           log: Callable[[str], None] = print) -> Optional[tuple[Path, dict[str, Any]]]:
    """Load the newest checkpoint in ``directory`` that reads; ``None`` when there is none.

    An unreadable one (corrupt, truncated, refused, missing file) is named in one
    line through ``log`` and the previous complete one is tried. When none reads,
    one :class:`iqprior.checkpoint.CheckpointError` names them all.
    """
    from iqprior.checkpoint import CheckpointError

    candidates = complete_checkpoints(directory)
    problems = []
    for path in candidates:
        try:
            return path, load_checkpoint(path, model, optimizers)
        except Exception as e:  # noqa: BLE001 -- any failure: name it in one line, try the previous one
            text = (str(e).strip().splitlines() or [type(e).__name__])[0]
            line = f"skipping checkpoint {path}: {text}"
            log(line if len(line) < 500 else line[:500] + "...")
            problems.append(path.name)
    if problems:
        raise CheckpointError(f"no checkpoint in {directory} can be resumed from ({', '.join(problems)} "
                              f"unreadable, see above); remove them or start without --resume")
    return None
