"""Reading the tensors of a TorchScript archive without running it.

``torch.jit.load`` compiles and runs the archive's code; ``torch.load`` refuses
TorchScript archives when ``weights_only=True``. Two files iqprior needs are
TorchScript archives: OpenAI CLIP's ``RN50.pt`` and ARNIQA's regressors
(``regressor_koniq10k.pth``, sk2torch-wrapped Ridge models). Their ``data.pkl``
is a pickle of module objects (``__torch__.*`` classes, each restored from a
dict of its attributes) and tensors stored beside it, as in ``torch.save``'s
zip format. :func:`read_scripted_tensors` unpickles it with a restricted
unpickler: ``__torch__.*`` classes become inert attribute holders, tensors are
rebuilt with torch's own rebuilder (:data:`iqprior.torch_compat.REBUILD_TENSOR`), and any other global is
refused. The code in the archive is never read.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import torch_compat

__all__ = ["is_torchscript", "read_scripted_tensors", "ScriptedObject"]


class ScriptedObject:
    """Inert holder of one TorchScript object's pickled attributes (``state``)."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _script_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (ScriptedObject,), {"qualified_name": qualname})


def is_torchscript(path: str | os.PathLike) -> bool:
    """True when ``path`` is a zip archive written by ``torch.jit.save`` (it has ``constants.pkl``)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


_STORAGE_NAMES = {"FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
                  "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"}


_LIST_BUILDERS = {"build_intlist", "build_tensorlist", "build_doublelist", "build_boollist"}


def _identity(data: Any) -> Any:
    return data


def _restore_type_tag(value: Any, type_str: str) -> Any:
    return value


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, torch.UntypedStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _script_class(f"{module}.{name}")
        if (module, name) == torch_compat.REBUILD_TENSOR:
            return torch_compat.tensor_rebuilder()
        if module == "torch" and name in _STORAGE_NAMES:
            return getattr(torch, name)
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return _identity
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return _restore_type_tag
        if (module, name) == ("collections", "OrderedDict"):
            import collections
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a TorchScript archive")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60}")
        storage_type, key = pid[1], str(pid[2])
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}data/{key}")
            self._storages[key] = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8)
        with warnings.catch_warnings():  # TypedStorage is what _rebuild_tensor_v2 takes
            warnings.simplefilter("ignore", UserWarning)
            return torch.storage.TypedStorage(wrap_storage=self._storages[key], dtype=storage_type.dtype,
                                              _internal=True)


def _flatten(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj
    elif isinstance(obj, ScriptedObject):
        _flatten(obj.state, prefix, out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str):
                _flatten(v, f"{prefix}{k}.", out)


def read_scripted_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``{dotted attribute path: tensor}`` of every tensor held by the archive's module tree.

    Keys follow the module's ``state_dict`` naming (``visual.conv1.weight``);
    tensors kept as plain attributes appear too. Raises ``pickle.UnpicklingError``
    wrapped in :class:`iqprior.checkpoint.CheckpointError` for anything else.
    """
    from .checkpoint import CheckpointError, CheckpointRefused

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            data_pkl = [n for n in z.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
            if not data_pkl:
                raise CheckpointError(f"{path} is a TorchScript archive without data.pkl")
            name = data_pkl[0]
            prefix = name[: -len("data.pkl")]
            obj = _Unpickler(z.read(name), z, prefix).load()
    except pickle.UnpicklingError as e:
        raise CheckpointRefused(f"refused {path}: {e} (iqprior reads only the tensors of TorchScript "
                                f"archives and never runs them)") from None
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"cannot read {path} as a TorchScript archive (truncated or corrupt): {e}") from None
    out: dict[str, torch.Tensor] = {}
    _flatten(obj, "", out)
    return out
