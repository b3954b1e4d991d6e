"""Training checkpoints: weights as safetensors, state as a separate file, both atomic.

A checkpoint directory ``step_000123/`` holds

- ``model.safetensors``: the trained module's ``state_dict`` (tensors only);
- ``training_state.pt``: step, optimizer/scheduler/scaler states and the RNG
  states of Python, NumPy and torch (CPU and CUDA), so ``--resume`` continues
  bit-exactly. It is our own file, written with ``torch.save`` and read back
  with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only).

Each file is written to a temporary name and renamed, and the directory is
completed by a ``DONE`` marker last, so a crash never leaves a checkpoint that
looks complete but is not.
"""
from __future__ import annotations

import io
import os
import random
import re
from pathlib import Path
from typing import Any, Optional

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


def latest_checkpoint(directory: str | os.PathLike) -> Optional[Path]:
    """The complete ``step_*`` directory with the highest step, or ``None``."""
    directory = Path(directory)
    if (directory / DONE_FILE).is_file():
        return directory
    best = None
    if directory.is_dir():
        for p in directory.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and (p / DONE_FILE).is_file() and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), p)
    return best[1] if best else None


def load_model_weights(path: str | os.PathLike, model: nn.Module, strict: bool = True) -> None:
    """Load ``model.safetensors`` from a checkpoint directory (or the file itself)."""
    from safetensors.torch import load_file

    from iqprior.checkpoint import load_strict

    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    module = model.module if hasattr(model, "module") else model
    state = load_file(str(file))
    if strict:
        load_strict(module, state, source=str(file))
    else:
        module.load_state_dict(state, strict=False)


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizers: Optional[dict[str, Any]] = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore weights, optimizer states and RNG from a checkpoint directory; return its state dict."""
    path = Path(path)
    load_model_weights(path, model)
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    for name, obj in (optimizers or {}).items():
        if obj is not None and name in state:
            obj.load_state_dict(state[name])
    if restore_rng:
        set_rng_state(state["rng"])
    return state
