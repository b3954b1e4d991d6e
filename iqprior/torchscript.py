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
refused. The code in the archive is never read. Whether a file is such an
archive is :func:`iqprior.checkpoint_format.is_torchscript` (re-exported here).
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import torch_compat
from .checkpoint_format import CheckpointError, CheckpointRefused, is_torchscript
from .zip_records import MAX_MEMBER_BYTES, check_member  # noqa: F401 -- MAX_MEMBER_BYTES: re-exported

__all__ = ["is_torchscript", "read_scripted_tensors", "ScriptedObject"]


class ScriptedObject:
    """Inert holder of one TorchScript object's pickled attributes (``state``)."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _script_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (ScriptedObject,), {"qualified_name": qualname})


_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}
_STORAGE_NAMES = set(_STORAGE_DTYPES)
_LIST_BUILDERS = {"build_intlist", "build_tensorlist", "build_doublelist", "build_boollist"}

MAX_ENTRIES = 500_000        # objects visited by the walk over the module tree (aliases included)
MAX_DEPTH = 200              # nesting of modules / dicts (real archives stay below 30)


class _Bounded(pickle.UnpicklingError):
    """The archive exceeds a structural bound (too deep, too many entries, a cycle)."""


def _identity(data: Any) -> Any:
    return data


def _restore_type_tag(value: Any, type_str: str) -> Any:
    return value


def _check_geometry(storage: Any, offset: Any, size: Any, stride: Any) -> None:
    """The tensor ``(offset, size, stride)`` lies inside ``storage``; else UnpicklingError."""
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and len(size) <= 64
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
        raise pickle.UnpicklingError(f"a tensor has an invalid layout (offset {offset!r:.40}, size {size!r:.60}, "
                                     f"stride {stride!r:.60})")
    numel = storage.size()
    empty = any(v == 0 for v in size)
    need = offset if empty else offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1
    if need > numel:
        raise pickle.UnpicklingError(f"a tensor record is truncated: the layout needs {need} elements, the "
                                     f"record holds {numel}")


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"a tensor is built from a {type(storage).__name__}, not a storage")
    _check_geometry(storage, offset, size, stride)
    return torch_compat.tensor_rebuilder()(storage, offset, size, stride, False, collections.OrderedDict())


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    """Read member ``name`` after checking its method and declared size (torch writes members stored)."""
    check_member(archive.getinfo(name), pickle.UnpicklingError)
    return archive.read(name)


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _check_pickle(data: bytes) -> None:
    """Scan the opcodes first: CPython's unpickler grows its memo array to the largest index a PUT names
    (8 bytes per slot, zero-filled), so one ``LONG_BINPUT 2**31`` would take 16 GiB. Real pickles number
    memo slots from 0, so an index is below the count of opcodes seen."""
    import pickletools

    try:
        for n, (op, arg, _pos) in enumerate(pickletools.genops(data)):
            if op.name in _MEMO_OPS and not (isinstance(arg, int) and 0 <= arg <= n):
                raise pickle.UnpicklingError(f"memo index {arg} at opcode {n} (a hostile pickle)")
    except pickle.UnpicklingError:
        raise
    except Exception as e:  # noqa: BLE001 -- truncated or malformed opcodes
        raise pickle.UnpicklingError(f"data.pkl is not a valid pickle: {e}") from None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, torch.UntypedStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _script_class(f"{module}.{name}")
        if (module, name) == torch_compat.REBUILD_TENSOR:
            return _rebuild_tensor  # torch's rebuilder, after the layout is checked against the record
        if module == "torch" and name in _STORAGE_NAMES:
            return getattr(torch, name)
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return _identity
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return _restore_type_tag
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a TorchScript archive")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60}")
        storage_type, key = pid[1], pid[2]
        if not (isinstance(storage_type, type) and storage_type.__name__ in _STORAGE_NAMES
                and getattr(torch, storage_type.__name__, None) is storage_type):
            raise pickle.UnpicklingError(f"persistent id names {storage_type!r:.60}, not a storage type")
        if not isinstance(key, (str, int)):
            raise pickle.UnpicklingError(f"storage key {key!r:.60} is not a record name")
        key = str(key)
        if key not in self._storages:
            raw = _member(self._archive, f"{self._prefix}data/{key}")
            # a fixed-size copy: a short record fails the extent check instead of being resized
            self._storages[key] = torch.frombuffer(bytearray(raw), dtype=torch.uint8).untyped_storage() \
                if raw else torch.UntypedStorage(0)
        dtype = _STORAGE_DTYPES[storage_type.__name__]
        if self._storages[key].nbytes() % dtype.itemsize:
            raise pickle.UnpicklingError(f"record data/{key} holds {self._storages[key].nbytes()} bytes, not a "
                                         f"whole number of {dtype} elements")
        with warnings.catch_warnings():  # TypedStorage is what _rebuild_tensor_v2 takes
            warnings.simplefilter("ignore", UserWarning)
            return torch.storage.TypedStorage(wrap_storage=self._storages[key], dtype=dtype, _internal=True)


def _flatten(root: Any) -> dict[str, torch.Tensor]:
    """``{dotted path: tensor}`` over the tree under ``root``: bounded depth and entries, cycles refused.

    A subtree already walked without finding a tensor is skipped when met again
    (the memo), so shared empty containers cost once; aliases of tensors are
    kept, each counted against :data:`MAX_ENTRIES`.
    """
    out: dict[str, torch.Tensor] = {}
    empty: set[int] = set()
    on_path: set[int] = set()
    visits = 0

    def walk(obj: Any, prefix: str, depth: int) -> bool:
        nonlocal visits
        visits += 1
        if visits > MAX_ENTRIES:
            raise _Bounded(f"more than {MAX_ENTRIES} entries in the module tree (a hostile archive?)")
        if isinstance(obj, torch.Tensor):
            out[prefix[:-1]] = obj
            return True
        if isinstance(obj, ScriptedObject):
            children = [(prefix, obj.state)]
        elif isinstance(obj, dict):
            children = [(f"{prefix}{k}.", v) for k, v in obj.items() if isinstance(k, str)]
        else:
            return False
        if id(obj) in empty:
            return False
        if id(obj) in on_path:
            raise _Bounded(f"the module tree has a cycle at {prefix[:-1] or '<root>'!r:.80}")
        if depth >= MAX_DEPTH:
            raise _Bounded(f"the module tree is nested more than {MAX_DEPTH} deep")
        on_path.add(id(obj))
        found = False
        for child_prefix, child in children:
            found = walk(child, child_prefix, depth + 1) or found
        on_path.discard(id(obj))
        if not found:
            empty.add(id(obj))
        return found

    walk(root, "", 0)
    return out


def read_scripted_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``{dotted attribute path: tensor}`` of every tensor held by the archive's module tree.

    Keys follow the module's ``state_dict`` naming (``visual.conv1.weight``);
    tensors kept as plain attributes appear too. Work and memory are bounded:
    members must be stored uncompressed with consistent sizes, each tensor must
    lie inside its record, and the walk over the tree is capped in depth and
    entries. Any failure is one :class:`iqprior.checkpoint.CheckpointError`
    (:class:`~iqprior.checkpoint.CheckpointRefused` for a disallowed global).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            data_pkl = [n for n in z.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
            if not data_pkl:
                raise CheckpointError(f"{path} is a TorchScript archive without data.pkl")
            name = data_pkl[0]
            prefix = name[: -len("data.pkl")]
            data = _member(z, name)
            _check_pickle(data)
            return _flatten(_Unpickler(data, z, prefix).load())
    except CheckpointError:
        raise
    except _Bounded as e:
        raise CheckpointError(f"cannot read {path} as a TorchScript archive: {e}") from None
    except pickle.UnpicklingError as e:
        if "is not allowed" in str(e):
            raise CheckpointRefused(f"refused {path}: {e} (iqprior reads only the tensors of TorchScript "
                                    f"archives and never runs them)") from None
        raise CheckpointError(f"cannot read {path} as a TorchScript archive: {e}") from None
    except Exception as e:  # noqa: BLE001 -- truncated, corrupt, hostile: always one CheckpointError line
        text = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise CheckpointError(f"cannot read {path} as a TorchScript archive (truncated or corrupt): "
                              f"{type(e).__name__}: {text}") from None
