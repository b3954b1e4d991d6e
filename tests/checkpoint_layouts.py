"""Writers of checkpoint files in the layouts the released files really have (test helper).

- :func:`write_lightning` - a PyTorch-Lightning 1.0.8 ``.ckpt`` (DAEFR): ``callbacks``
  is a dict keyed by the ``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint``
  class, plus Adam ``optimizer_states`` and the other top-level entries.
- :func:`write_runner_save` - UnderwaterRanker's ``runner.save`` (NU2Net): ``net``,
  ``optimizer``, ``epoch`` and ``numpy.float64`` best scores, pickled under the
  numpy-1 (``numpy.core.multiarray.scalar``) or numpy-2 (``numpy._core...``) names.
- :func:`write_hostile` - a pickle whose ``__reduce__`` creates a marker file when
  unpickled without ``weights_only``.
"""
from __future__ import annotations

import builtins
import io
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch

LIGHTNING_MODULE = "pytorch_lightning.callbacks.model_checkpoint"


def _adam_state(tensors: dict) -> dict:
    params = [torch.nn.Parameter(v.detach().float().clone()) for v in list(tensors.values())[:3]
              if v.is_floating_point()]
    opt = torch.optim.Adam(params, lr=1e-4)
    sum(p.sum() for p in params).backward()
    opt.step()
    return opt.state_dict()


def write_lightning(path: Path, state_dict: dict) -> Path:
    """Save ``state_dict`` as Lightning 1.0.8 does; the stub modules exist only while saving."""
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", LIGHTNING_MODULE]
    mods = {n: types.ModuleType(n) for n in names}
    cls = type("ModelCheckpoint", (), {"__module__": LIGHTNING_MODULE})
    mods[LIGHTNING_MODULE].ModelCheckpoint = cls
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update(mods)
    try:
        ckpt = {"epoch": 41, "global_step": 123456, "pytorch-lightning_version": "1.0.8",
                "callbacks": {cls: {"best_model_score": torch.tensor(0.0312), "best_model_path": "logs/last.ckpt"}},
                "optimizer_states": [_adam_state(state_dict), _adam_state(state_dict)],
                "lr_schedulers": [], "state_dict": state_dict}
        torch.save(ckpt, path)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return path


class _Numpy1Pickler(pickle._Pickler):
    """Writes numpy's scalar reconstructor under its numpy-1 name, as a numpy-1.x process does."""

    def save_global(self, obj, name=None):
        core = getattr(np, "_core", None) or np.core
        if obj is core.multiarray.scalar:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\nscalar\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


_NUMPY1 = types.ModuleType("numpy1_pickle")
_NUMPY1.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
_NUMPY1.Pickler = _Numpy1Pickler


def write_runner_save(path: Path, state_dict: dict, numpy_major: int = 1) -> Path:
    """UnderwaterRanker's ``runner.save`` layout with numpy scalars (numpy 1.x or 2.x names)."""
    ckpt = {"net": state_dict, "optimizer": _adam_state(state_dict), "epoch": 300,
            "max_psnr": np.float64(23.4567), "max_ssim": np.float64(0.9123)}
    torch.save(ckpt, path, pickle_module=_NUMPY1 if numpy_major == 1 else pickle)
    return path


class Hostile:
    """Unpickling this (without ``weights_only``) creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def write_hostile(path: Path, marker: Path, state: dict | None = None) -> Path:
    """A checkpoint holding real-looking tensors and one hostile object."""
    state = state or {"weight": torch.zeros(2)}
    torch.save({"params": state, "state_dict": state, "net": state, "step": 5, "rng": {}, "x": Hostile(marker)},
               path)
    return path


def pickled_globals(path: Path) -> list[str]:
    """The globals a checkpoint names that torch does not allow by default."""
    return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))


def unpickled_unsafely(path: Path) -> None:
    """What a loader without ``weights_only`` would do (the proof that a fixture is hostile)."""
    with open(path, "rb") as f:
        buf = io.BytesIO(f.read())
    torch.load(buf, weights_only=False)


# -- TorchScript-shaped archives (hostile ones included) ----------------------------------------
class StorageRef:
    """A persistent reference to ``data/<key>`` in :func:`write_scripted`'s archive."""

    def __init__(self, key: str, storage_type=torch.FloatStorage, numel: int = 0):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class TensorRef:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""

    def __init__(self, storage: StorageRef, offset: int, size: tuple, stride: tuple):
        self.args = (storage, offset, tuple(size), tuple(stride))

    def __reduce__(self):
        import collections
        return torch._utils._rebuild_tensor_v2, (*self.args, False, collections.OrderedDict())


class _ScriptPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def scripted_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _ScriptPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_scripted(path: Path, obj=None, records: dict | None = None, data_pkl: bytes | None = None,
                   compress: dict | None = None) -> Path:
    """A zip laid out as ``torch.jit.save`` writes it (``archive/constants.pkl``, ``data.pkl``, ``data/<key>``).

    ``obj`` is pickled into ``data.pkl`` (:class:`TensorRef`/:class:`StorageRef` become tensors and
    storages), or ``data_pkl`` is used as it is; ``compress`` maps member names to a zipfile method.
    """
    import zipfile

    members = {"archive/constants.pkl": pickle.dumps(()), "archive/version": b"3",
               "archive/data.pkl": data_pkl if data_pkl is not None else scripted_pickle(obj)}
    members.update({f"archive/data/{k}": v for k, v in (records or {}).items()})
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data, compress_type=(compress or {}).get(name, zipfile.ZIP_STORED))
    return path
