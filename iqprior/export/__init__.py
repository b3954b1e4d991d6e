"""ONNX export of adapters, and running an exported file (``iqprior export``, ``iqprior restore --onnx``).

>>> import adapters
>>> from iqprior.export import export_onnx, OnnxModel
>>> model = adapters.create("codeformer+", checkpoint="codeformer.pth")      # doctest: +SKIP
>>> report = export_onnx(model, "codeformer_plus.onnx")                       # doctest: +SKIP
>>> print(report.summary())        # inputs image, level, fidelity; max |onnxruntime - PyTorch| ...
>>> y = OnnxModel("codeformer_plus.onnx")(x, score=9)                         # doctest: +SKIP

Needs the ``onnx`` extra (``pip install 'iqprior[onnx]'``: onnx, onnxruntime);
importing this package imports neither (nor ``adapters``) until used.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["export_onnx", "ExportReport", "ExportError", "OnnxModel", "verify_export"]

_LAZY = {"export_onnx": "onnx_export", "ExportReport": "onnx_export", "ExportError": "onnx_file",
         "OnnxModel": "runner", "verify_export": "verify"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
