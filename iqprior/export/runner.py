"""Run an exported ONNX file with onnxruntime, called like an adapter.

>>> from iqprior.export import OnnxModel
>>> model = OnnxModel("codeformer_plus.onnx")            # doctest: +SKIP
>>> y = model(x, score=9)    # x: (B, 3, 512, 512) RGB in [0, 1] (torch); y: same, not clamped

:class:`OnnxModel` has what :class:`iqprior.faces.Restorer` reads of a model
(``task``, ``native_size``, ``model(x, score=...)``), so ``iqprior restore
--onnx`` runs the same loop as the PyTorch path. It reads the file's
``iqprior.*`` metadata; a file without them (not an iqprior export) is run
when its inputs are image/level-shaped: one 4-D float input ``(B, 3, H, W)``,
optionally one integer input of rank 0 or 1 (a level); a fixed square input
size makes it a face model of that size, anything else an image model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..levels import DEFAULT_LEVELS, ScoreLike, as_levels
from ..padding import needs_padding, pad_to
from ..printable import printable
from .onnx_bounds import RunBound, check_input_size, checked_metadata
from .onnx_file import META_PREFIX, read_metadata, require_onnxruntime

__all__ = ["OnnxModel", "DEFAULT_LEVEL"]

DEFAULT_LEVEL = 9  # as adapters: the top level unless told otherwise
_FLOAT = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
_INT = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _describe(args) -> str:
    return ", ".join(f"{a.name}: {a.type} {list(a.shape)}" for a in args)


class OnnxModel:
    """An ONNX file run by onnxruntime; ``y = model(x, score=None, **controls)``.

    Args:
        path: the ``.onnx`` file (an ``iqprior export``, or any image/level-shaped model).
        threads: onnxruntime intra-op threads (``None``: onnxruntime's default).
        providers: onnxruntime execution providers (default: CPU).

    Attributes: ``task`` (``"face"`` / ``"image"``), ``native_size`` (int or ``None``), ``levels``
    (0 = takes no level), ``controls`` (``{name: default}``), ``metadata`` (the ``iqprior.*``
    entries, empty for a foreign file), ``adapter_name``, ``random_weights``.
    """

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None,
                 providers: Optional[list[str]] = None):
        ort = require_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"--onnx {self.path}: no such file")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        self.bound = RunBound()  # time and memory of every run (and memory of the load: constant folding)
        try:
            with self.bound.memory():
                self.session = ort.InferenceSession(str(self.path), opts,
                                                    providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own error types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"{self.path} is not a model onnxruntime can load: {printable(first)}") from None
        self._overrides: dict[str, Any] = {}
        self.metadata = read_metadata(self.session.get_modelmeta().custom_metadata_map, META_PREFIX)
        try:
            self._layout()
        except ValueError as e:
            raise ValueError(f"{self.path}: {e}") from None

    # -- what the file takes ---------------------------------------------------------------
    def _layout(self) -> None:
        inputs = self.session.get_inputs()
        images = [i for i in inputs if i.type in _FLOAT and len(i.shape) == 4
                  and (i.shape[1] == 3 or not isinstance(i.shape[1], int))]
        levels = [i for i in inputs if i.type in _INT and len(i.shape) <= 1]
        image = next((i for i in images if i.name == "image"), images[0] if len(images) == 1 else None)
        level = next((i for i in levels if i.name == "level"), levels[0] if len(levels) == 1 else None)
        rest = [i for i in inputs if i is not image and i is not level]
        outputs = self.session.get_outputs()
        if image is None or rest or not outputs or len(outputs[0].shape) != 4:
            raise ValueError(f"{self.path} is not image/level-shaped (inputs {_describe(inputs)}; outputs "
                             f"{_describe(outputs)}): iqprior runs an ONNX file with one float input (B, 3, H, W) "
                             f"in [0, 1], optionally an int64 level (B,), and a (B, 3, H, W) output")
        self.image_input, self.level_input = image, level
        self.output_name = "output" if any(o.name == "output" for o in outputs) else outputs[0].name
        m = checked_metadata(self.metadata)  # types and ranges; sizes within the pixel cap
        self.input_size: Optional[tuple[int, int]] = check_input_size(image.shape, "its image input")
        fixed = self.input_size is not None
        if self.metadata:
            self.task = m.get("task", "image")
            self.native_size = m.get("native_size")
        else:  # a foreign file: a fixed square size is taken for aligned faces
            self.task = "face" if fixed and self.input_size[0] == self.input_size[1] else "image"
            self.native_size = self.input_size[0] if self.task == "face" else None
        self.levels = m.get("levels", DEFAULT_LEVELS) if level is not None else 0
        overridable = {i.name for i in self.session.get_overridable_initializers()}
        self.controls: dict[str, float] = {k: v for k, v in m.get("controls", {}).items() if k in overridable}
        self.adapter_name = m.get("adapter", printable(self.path.stem))
        self.random_weights = m["random_weights"]
        self.scale = m.get("scale", 1)
        # (minimum, multiple, square) of the network: met here by padding (a traced graph's pads are constants)
        self.size_requirements = m.get("size_requirements", (0, 1, False))

    def set_controls(self, **values: float) -> OnnxModel:
        """Per-call defaults for the file's controls (e.g. ``fidelity=0.7``); a call's own values win."""
        for k in values:
            if k not in self.controls:
                raise ValueError(f"{self.path.name} has no control {k!r} (controls: {sorted(self.controls) or 'none'})")
        self._overrides.update({k: v for k, v in values.items() if v is not None})
        return self

    @property
    def is_conditioned(self) -> bool:
        """Whether the file takes a level."""
        return self.level_input is not None

    # -- running -------------------------------------------------------------------------
    def level_array(self, score: Optional[ScoreLike], batch: int) -> np.ndarray:
        """``(B,)`` levels for ``score`` (int level, float score in [0, 1], or 1 or B of them), checked."""
        lv = as_levels(DEFAULT_LEVEL if score is None else score, self.levels, batch=batch)
        if lv.dim() == 0:
            lv = lv.reshape(1)
        if lv.shape[0] == 1 and batch != 1:
            lv = lv.expand(batch)
        if lv.shape[0] != batch:
            raise ValueError(f"got {lv.shape[0]} levels for a batch of {batch} images; pass one level or one "
                             f"per image")
        return lv.numpy().astype(_INT[self.level_input.type])

    def feeds(self, x: torch.Tensor, score: Optional[ScoreLike] = None, **controls: Any) -> dict[str, np.ndarray]:
        """The onnxruntime inputs for ``x`` (B, 3, H, W) in [0, 1], ``score`` and control overrides."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected x of shape (B, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            h, w = self.input_size
            raise ValueError(f"{self.path.name} takes {h}x{w} images, got {x.shape[-2]}x{x.shape[-1]}; "
                             f"resize first (iqprior restore does) or export with another --size")
        feeds = {self.image_input.name: x.detach().cpu().numpy().astype(_FLOAT[self.image_input.type])}
        if self.level_input is not None:
            feeds[self.level_input.name] = self.level_array(score, x.shape[0])
        for k, v in controls.items():
            if v is None:
                continue
            if k not in self.controls:
                raise ValueError(f"{self.path.name} has no control {k!r} (controls: {sorted(self.controls) or 'none'})")
            arr = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float32).reshape(-1)
            if arr.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"{k} has {arr.shape[0]} values for a batch of {x.shape[0]}; pass 1 or one per image")
            feeds[k] = arr
        return feeds

    def __call__(self, x: torch.Tensor, score: Optional[ScoreLike] = None, **controls: Any) -> torch.Tensor:
        """Run the file on ``x`` (B, 3, H, W) RGB in [0, 1]; returns the output as a float32 tensor
        on ``x``'s device (not clamped). ``score``: level(s) for a file that takes one (default 9),
        ignored otherwise; ``controls``: e.g. ``fidelity=0.7`` (default: the file's)."""
        h, w = x.shape[-2:] if isinstance(x, torch.Tensor) and x.dim() == 4 else (0, 0)
        padded = needs_padding(self.size_requirements) and isinstance(x, torch.Tensor) and x.dim() == 4
        if padded:
            x = pad_to(x, *self.size_requirements)
        feeds = self.feeds(x, score, **{**self._overrides, **controls})
        out = self.bound.run(self.session, [self.output_name], feeds, str(self.path.name))[0]
        y = torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)
        return y[..., : h * self.scale, : w * self.scale] if padded else y

    def __repr__(self) -> str:
        return (f"OnnxModel({str(self.path)!r}, adapter={self.adapter_name!r}, task={self.task!r}, "
                f"native_size={self.native_size}, levels={self.levels}, controls={self.controls})")
