"""Keeping dependencies from unpickling files themselves.

pyiqa, torchvision, torch hub, facexlib, basicsr and OpenAI CLIP load their
weight files with ``torch.load`` (often ``weights_only=False``),
``torch.hub.load_state_dict_from_url`` (``weights_only=False`` by default) or
``torch.jit.load`` (runs the archive's code). iqprior builds those networks
itself wherever it can and loads their files through
:func:`iqprior.checkpoint.safe_load`; :func:`guarded_loads` is the second line
for whatever a dependency still loads while one of its networks is built:

- ``torch.load`` → :func:`iqprior.checkpoint.safe_load` (whatever
  ``weights_only`` the caller asked for);
- ``torch.hub.load_state_dict_from_url`` (and torchvision's copy of it) →
  the file is looked up in the weights registry (``IQPRIOR_WEIGHTS``, the cache,
  torch hub's ``checkpoints``), downloaded there if missing and allowed, its
  name's hash prefix checked, and read with ``safe_load``;
- ``torch.jit.load`` → refused (:class:`iqprior.checkpoint.CheckpointRefused`).
"""
from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from .checkpoint import CheckpointRefused, safe_load

__all__ = ["guarded_loads", "hub_state_dict", "locate_hub_file"]

_LOCK = threading.RLock()
_DEPTH = 0
_SAVED: dict[str, Any] = {}


def locate_hub_file(name: str, model_dir: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """Where a torch-hub-style file ``name`` is on disk (registry search, ``model_dir``, hub checkpoints)."""
    from . import weights

    found = weights.find(name)
    if found is not None:
        return found
    for d in ([Path(model_dir)] if model_dir else []) + [Path(torch.hub.get_dir()) / "checkpoints"]:
        if (d / name).is_file():
            return d / name
    return None


def hub_state_dict(url: str, model_dir: Optional[str] = None, map_location: Any = None, progress: bool = True,
                   check_hash: bool = False, file_name: Optional[str] = None, weights_only: bool = False,
                   **_ignored: Any) -> dict[str, Any]:
    """Drop-in for ``torch.hub.load_state_dict_from_url`` that reads through ``safe_load``.

    The hash prefix in the file's name is always checked (``check_hash`` is
    ignored: it is never skipped); ``weights_only`` is ignored (always safe).
    """
    from . import weights

    name = file_name or os.path.basename(urllib.parse.urlparse(url).path)
    path = locate_hub_file(name, model_dir)
    if path is None:
        dest_dir = Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / "checkpoints"
        entry = weights.REGISTRY.get(name)
        path = weights.download(url, dest_dir / name, entry.sha256 if entry else None, progress=progress)
    return safe_load(path)


def _torch_load(f: Any, map_location: Any = None, pickle_module: Any = None, *, weights_only: Any = None,
                mmap: Any = None, **kwargs: Any) -> Any:
    if isinstance(f, (str, os.PathLike)):
        return safe_load(f)
    from .checkpoint import _TORCH_LOAD, CheckpointError, allowed_globals  # a file object: still weights_only=True
    from .zip_records import stream_problem

    problem = stream_problem(f)
    if problem is not None:  # compressed records: refused before torch inflates them, as safe_load does
        raise CheckpointError(f"cannot read {getattr(f, 'name', 'a stream')} as a PyTorch checkpoint: {problem}")
    with torch.serialization.safe_globals(allowed_globals()):
        return _TORCH_LOAD(f, map_location="cpu", weights_only=True)


def _jit_load(f: Any, *args: Any, **kwargs: Any) -> Any:
    raise CheckpointRefused(f"refused to run TorchScript archive {getattr(f, 'name', f)}: iqprior never executes "
                            f"weight files (its tensors are read with iqprior.torchscript instead)")


def _targets() -> list[tuple[Any, str, Any]]:
    out: list[tuple[Any, str, Any]] = [(torch, "load", _torch_load), (torch.jit, "load", _jit_load),
                                       (torch.hub, "load_state_dict_from_url", hub_state_dict)]
    try:
        import torchvision._internally_replaced_utils as tv_utils
        import torchvision.models._api as tv_api
        out += [(tv_utils, "load_state_dict_from_url", hub_state_dict),
                (tv_api, "load_state_dict_from_url", hub_state_dict)]
    except ImportError:
        pass
    return out


@contextlib.contextmanager
def guarded_loads() -> Iterator[None]:
    """While active, ``torch.load``/hub/``torch.jit.load`` calls anywhere go through the safe reader."""
    global _DEPTH
    with _LOCK:
        if _DEPTH == 0:
            for obj, attr, new in _targets():
                _SAVED[f"{id(obj)}.{attr}"] = (obj, attr, getattr(obj, attr))
                setattr(obj, attr, new)
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0:
                for obj, attr, old in _SAVED.values():
                    setattr(obj, attr, old)
                _SAVED.clear()
