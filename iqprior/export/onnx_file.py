"""The ``onnx`` side of an export: metadata, default values of optional inputs, reading them back.

Metadata are the model's ``metadata_props`` with keys ``iqprior.<field>``
(``adapter``, ``task``, ``scale``, ``native_size``, ``input_size``, ``levels``,
``controls``, ``precision``, ``random_weights``, ``iqprior_version``). A control
input (e.g. ``fidelity``) gets an initializer of its own name holding its
default value: ONNX's way of making an input optional with a default
(onnxruntime lists it under ``get_overridable_initializers()``).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

META_PREFIX = "iqprior."
INSTALL_HINT = "pip install 'iqprior[onnx]' (onnx and onnxruntime)"


class ExportError(ValueError):
    """A model (or one of its ops) that cannot be exported, or a file that fails its check; says which and why."""


def require_onnx() -> Any:
    """``import onnx``, or an ``ImportError`` saying what to install."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"running an ONNX file needs onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


def finish_file(path: str | os.PathLike, meta: dict[str, str], controls: dict[str, float], prefix: str) -> None:
    """Write ``meta`` (keys prefixed) and the controls' default values into the ONNX file at ``path``."""
    onnx = require_onnx()
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inputs = {i.name for i in model.graph.input}
    for name, value in controls.items():
        if name not in inputs:
            raise ValueError(f"the exported graph has no input {name!r}: the control was traced as a constant")
        model.graph.initializer.append(numpy_helper.from_array(np.array([value], dtype=np.float32), name))
    onnx.save(model, str(path))
    set_metadata(path, meta, prefix)


def set_metadata(path: str | os.PathLike, meta: dict[str, str], prefix: str) -> None:
    """Rewrite the ``prefix``-ed metadata of the ONNX file at ``path`` (nothing else changes)."""
    onnx = require_onnx()
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = prefix + k, v
    onnx.save(model, str(path))


def read_metadata(custom: dict[str, str], prefix: str) -> dict[str, str]:
    """The ``iqprior.*`` entries of a session's custom metadata map, without the prefix."""
    return {k[len(prefix):]: v for k, v in custom.items() if k.startswith(prefix)}
