"""Export an adapter to ONNX with its level (and its controls) as inputs.

The graph's inputs are ``image`` ``(B, 3, H, W)`` float32 RGB in [0, 1] and,
for a model that takes a quality level ("+" adapters, IQPFR), ``level`` ``(B,)``
int64 in ``0..levels-1``; output ``output`` ``(B, 3, H', W')``, the adapter's
convention (not clamped). Per-call controls (:attr:`adapters.Adapter.controls`,
e.g. CodeFormer's ``fidelity``) are further inputs ``(N,)`` float32 (N = 1 or B)
whose default value is stored in the file as an initializer of the same name,
so feeding only ``image`` and ``level`` runs the model's default; they are
never constants. Batch is dynamic; height and width are dynamic for models
without a native size (``task == "image"``), fixed at the native size for face
models. The traced path is the adapter's exact (upstream-identical) one.

The file's ``metadata_props`` (:data:`META_KEYS`) say what
:class:`iqprior.export.OnnxModel` needs to run it as ``iqprior restore`` runs
the PyTorch model. The classic TorchScript-based exporter is used
(``torch.onnx.export(..., dynamo=False)``).
"""
from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..padding import padded_size
from .onnx_file import META_PREFIX, ExportError

__all__ = ["export_onnx", "ExportReport", "ExportError", "META_PREFIX", "DEFAULT_OPSET", "parse_size",
           "takes_level", "check_out_file", "export_refusal",
           "check_opset"]

# opset 18: Resize with antialias (PUIE-Net / NU2Net resize their input with antialiasing)
DEFAULT_OPSET = 18
MIN_OPSET = 18
MAX_OPSET = 20
# trace size of models with dynamic height and width: no multiple of 8 or 16, so that the models'
# "resize to the working size" branches are traced (at a working size they are an identity)
TRACE_SIZE = (76, 92)
PRECISIONS = ("fp32", "fp16")
FP32_ATOL = 1e-3  # an fp32 file further from PyTorch's exact path than this fails the export


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how the file compares with PyTorch.

    ``max_diff``: ``{check: max |onnxruntime - PyTorch exact|}`` (empty without verification);
    ``metadata``: the file's ``iqprior.*`` metadata (without the prefix).
    """

    path: Path
    metadata: dict[str, str]
    inputs: list[str]
    max_diff: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        diffs = ", ".join(f"{k}: {v:.2e}" for k, v in self.max_diff.items()) or "not verified"
        return (f"exported {self.metadata.get('adapter')} ({self.metadata.get('precision')}) -> {self.path}; "
                f"inputs {', '.join(self.inputs)}; max |onnxruntime - PyTorch| {diffs}")


def check_opset(opset: int) -> int:
    """``opset`` within what the exporter writes and the models need (Resize with antialias)."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"--opset must be an int in {MIN_OPSET}..{MAX_OPSET} (18: Resize with antialias; "
                         f"{MAX_OPSET}: the newest the TorchScript-based exporter writes), got {opset!r}")
    return opset


def parse_size(text: Optional[str | int]) -> Optional[tuple[int, int]]:
    """``"512"`` -> (512, 512); ``"480x640"`` -> (480, 640) (height x width); ``None`` -> ``None``."""
    if text is None:
        return None
    parts = str(text).lower().split("x")
    try:
        hw = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--size must be N or HxW (e.g. 512 or 480x640), got {text!r}") from None
    if len(hw) == 1:
        hw = (hw[0], hw[0])
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"--size must be N or HxW with positive sides, got {text!r}")
    return hw  # type: ignore[return-value]


def takes_level(model: nn.Module) -> bool:
    """Whether ``model`` takes a quality level (:attr:`adapters.Adapter.takes_level`: a "+" adapter, or one
    conditioned by construction)."""
    return bool(_adapter(model).takes_level)


def export_refusal(name: str) -> Optional[str]:
    """Why adapter ``name`` cannot be exported (its spec's ``export_refused``), known before the model is
    built; ``None`` when it can or the spec does not say (the built model's ``export_refused`` is checked
    by :func:`export_onnx`)."""
    import adapters

    return adapters.spec(name).export_refused


def _adapter(model: nn.Module):
    """``model`` if it is an :class:`adapters.Adapter` (what the export reads its facts from); else TypeError."""
    import adapters

    if not isinstance(model, adapters.Adapter):
        raise TypeError(f"export_onnx takes an adapters.Adapter (e.g. adapters.create(name)), got "
                        f"{type(model).__name__}")
    return model


class ExportGraph(nn.Module):
    """``(image, [level], *controls) -> output`` around an adapter (what is traced)."""

    def __init__(self, model: nn.Module, level: bool, controls: tuple[str, ...], dtype: torch.dtype):
        super().__init__()
        self.model = model
        self.level = level
        self.controls = controls
        self.dtype = dtype

    def forward(self, image: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        level = args[0] if self.level else None
        controls = args[1:] if self.level else args
        kwargs = {k: v.to(self.dtype) for k, v in zip(self.controls, controls)}
        if level is not None:
            kwargs["score"] = level
        y = self.model(image.to(self.dtype), **kwargs)
        return y.float()


def _metadata(model: nn.Module, level: bool, controls: dict[str, float], size: Optional[tuple[int, int]],
              precision: str, random_weights: bool, levels: int) -> dict[str, str]:
    from .. import __version__

    native = model.native_size
    return {
        "adapter": str(model.adapter_name),
        "task": str(model.task),
        "scale": str(getattr(model, "scale", 1)),
        "native_size": "" if native is None else str(int(native)),
        "input_size": "" if size is None else f"{size[0]}x{size[1]}",
        "levels": str(levels if level else 0),
        "controls": json.dumps(controls),
        "precision": precision,
        "random_weights": "true" if random_weights else "false",
        "iqprior_version": __version__,
        # (minimum, multiple, square): the runner pads to it outside the graph, where pad amounts are dynamic
        "size_requirements": json.dumps(list(size_requirements(model))),
    }


def size_requirements(model: nn.Module) -> tuple[int, int, bool]:
    """The ``(minimum, multiple, square)`` the runner pads the input to: an ``auto`` model's, from its file
    (spandrel's); none for the others, which take any size (PUIE-Net, NU2Net resize inside the graph to
    their spec's :class:`~adapters.specs.SizeRequirements`)."""
    minimum, multiple, square = getattr(model, "size_requirements", (0, 1, False))
    return int(minimum), int(multiple), bool(square)


def check_out_file(out: Path, flag: str = "--out") -> None:
    """``out`` can be written as a file: not a folder, its folder writable (checked before any export)."""
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder; give a file name, e.g. {out / 'model.onnx'}")
    if out.exists() and not os.access(out, os.W_OK):
        raise ValueError(f"{flag} {out} exists and is not writable; choose another {flag}")
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {out}: {parent} is a file, not a folder; choose another {flag}")
            try:  # os.access says yes for root and on some file systems; a real file says it all
                fd, probe = tempfile.mkstemp(prefix=".iqprior-probe.", dir=parent)
                os.close(fd)
                os.unlink(probe)
            except OSError as e:
                raise ValueError(f"{flag} {out}: cannot write in {parent} ({e.strerror}); choose another "
                                 f"{flag}") from None
            return


def export_onnx(model: nn.Module, out: str | os.PathLike, *, size: Optional[tuple[int, int] | int] = None,
                opset: int = DEFAULT_OPSET, precision: str = "fp32", random_weights: bool = False,
                verify: bool = True, seed: int = 0, atol: Optional[float] = None) -> ExportReport:
    """Export ``model`` (an :class:`adapters.Adapter`) to the ONNX file ``out``.

    Args:
        model: the adapter (e.g. ``adapters.create("codeformer+", checkpoint=...)``); it is put in
            eval mode on its exact path, on the CPU, for tracing.
        out: the ``.onnx`` file to write (atomically); refused before exporting when not writable.
        size: fixed ``(H, W)`` (or N) of the input; default: the native size of face models,
            dynamic height and width for the others. A face model refuses another size.
        opset: ONNX opset (>= 18).
        precision: ``"fp32"`` or ``"fp16"`` (opt-in: weights and compute in float16, inputs and
            output stay float32; the verification reports its deviation).
        random_weights: recorded in the metadata (the CLI sets it when no checkpoint was given).
        verify: check the file (``onnx.checker``) and compare one onnxruntime run with PyTorch
            (:func:`iqprior.export.verify_export`: levels 0 and 9 in one batch).
        atol: a larger difference fails the export (default :data:`FP32_ATOL` for fp32; fp16 only
            reports its deviation).

    Returns:
        An :class:`ExportReport`. Raises :class:`ExportError` for a model or op that cannot be
        exported, ``ValueError`` for bad arguments, ``ImportError`` without ``onnx``.
    """
    out = Path(out)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    check_opset(opset)
    if isinstance(size, int):
        size = (size, size)
    model = _adapter(model)
    name = model.adapter_name
    if model.export_refused:
        raise ExportError(f"{name} cannot be exported to ONNX: {model.export_refused}")
    native = model.native_size
    if native is not None and size is not None and tuple(size) != (native, native):
        raise ValueError(f"{name} works at its native size {native}x{native} only; drop --size or pass {native}")
    check_out_file(out)
    from ..io import atomic_path
    from .onnx_file import finish_file, require_onnx
    from .symbolics import register_symbolics

    require_onnx()
    register_symbolics(opset)
    level = takes_level(model)
    levels = _levels(model) if level else 0
    controls = {c: float(getattr(model, c)) for c in model.controls}  # each control's default: its attribute
    fixed = (native, native) if native is not None else size
    h, w = fixed if fixed is not None else padded_size(*TRACE_SIZE, *size_requirements(model))
    was_exact, was_precision = model.exact, model.precision
    model.eval().cpu()
    model.set_exact(True)
    model.set_precision("fp32")
    dtype = torch.float16 if precision == "fp16" else torch.float32
    # fp16 traces a copy: casting the caller's model there and back would round its weights
    traced = copy.deepcopy(model).to(dtype) if dtype != torch.float32 else model
    graph = ExportGraph(traced, level, tuple(controls), dtype).eval()
    gen = torch.Generator().manual_seed(seed)
    args: list[torch.Tensor] = [torch.rand(2, 3, h, w, generator=gen)]
    names, dynamic = ["image"], {"image": {0: "batch"} if fixed else {0: "batch", 2: "height", 3: "width"}}
    if level:
        args.append(torch.tensor([0, levels - 1], dtype=torch.long))
        names.append("level")
        dynamic["level"] = {0: "batch"}
    for c, v in controls.items():
        args.append(torch.tensor([v], dtype=torch.float32))
        names.append(c)
        dynamic[c] = {0: f"{c}_count"}
    dynamic["output"] = {0: "batch"} if fixed else {0: "batch", 2: "out_height", 3: "out_width"}
    meta = _metadata(model, level, controls, fixed if size is not None else None, precision, random_weights,
                     levels)
    try:
        with atomic_path(out) as tmp:
            _trace(graph, tuple(args), names, dynamic, opset, tmp, name)
            finish_file(tmp, meta, controls, META_PREFIX)
            if fixed is None:
                _find_padding(tmp, model, meta, name, precision, seed)
    finally:
        model.set_exact(was_exact)
        model.set_precision(was_precision)
    report = ExportReport(out, meta, names)
    if verify:
        from .verify import verify_export

        report.max_diff = verify_export(out, model, seed=seed)
        limit = atol if atol is not None else (FP32_ATOL if precision == "fp32" else None)
        worst = max(report.max_diff.values())
        if limit is not None and worst > limit:
            raise ExportError(f"{out} differs from PyTorch by {worst:.3g} (> {limit:g}): "
                              f"{report.summary()}; the file is kept for inspection")
    return report


PAD_MULTIPLES = (1, 2, 4, 8, 16, 32, 64)
# what a dynamic-size file must meet at an odd size; a graph that bakes a size-dependent constant (a shifted-window
# attention mask) is off by more, and is refused: it runs correctly only at its traced size (--size HxW)
PROBE_ATOL = 1e-4


def _find_padding(path: Path, model: nn.Module, meta: dict[str, str], name: str, precision: str, seed: int) -> None:
    """A traced graph keeps the pad amounts of its trace size (a window transformer pads itself to its
    window inside ``forward``), so a dynamic-size file is run on inputs the runner pads to a multiple:
    the smallest of :data:`PAD_MULTIPLES` whose output at an odd size equals PyTorch's is written to ``meta``."""
    from .onnx_file import require_onnxruntime
    from .verify import ODD_SIZE

    x = torch.rand(1, 3, *ODD_SIZE, generator=torch.Generator().manual_seed(seed + 2))
    level = torch.tensor([0]) if takes_level(model) else None
    tol = PROBE_ATOL if precision == "fp32" else 1e-2
    ort = require_onnxruntime()
    ort.set_default_logger_severity(4)  # the sizes a graph cannot take are expected here: not the user's errors
    try:
        _try_multiples(path, model, meta, x, level, tol)
    finally:
        ort.set_default_logger_severity(2)
    if meta["size_requirements"] is None:
        raise ExportError(f"{name}: the exported graph does not reproduce PyTorch at sizes other than the traced "
                          f"one, whatever multiple of {PAD_MULTIPLES[-1]} or less the input is padded to (a size-dependent "
                          f"constant is baked into the trace, e.g. a shifted-window attention mask); export with --size HxW")


def _try_multiples(path: Path, model: nn.Module, meta: dict, x: torch.Tensor, level, tol: float) -> None:
    from .onnx_file import set_metadata
    from .runner import OnnxModel
    from .verify import compare

    minimum, multiple, square = size_requirements(model)
    for m in PAD_MULTIPLES:
        meta["size_requirements"] = json.dumps([minimum, math.lcm(multiple, m), square])
        set_metadata(path, meta, META_PREFIX)
        try:
            if compare(OnnxModel(path, threads=1), model, x, level) <= tol:
                return
        except Exception:  # onnxruntime's shape errors at a size the graph cannot take: try the next multiple
            continue
    meta["size_requirements"] = None


def _levels(model: nn.Module) -> int:
    embs = model.embeddings()
    if embs:
        return int(embs[0].levels)
    from ..levels import DEFAULT_LEVELS

    cfg = getattr(getattr(model, "net", None), "config", None)
    return int(getattr(cfg, "levels", DEFAULT_LEVELS))


def _trace(graph: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], dynamic: dict[str, Any],
           opset: int, out: Path, name: str) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings: the traced branches are those of the (fixed) config
        try:
            torch.onnx.export(graph, args, str(out), dynamo=False, input_names=names, output_names=["output"],
                              dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)
        except Exception as e:  # the exporter raises many types; the op is in the message
            msg = " ".join(str(e).split())[:300]
            raise ExportError(f"{name} cannot be exported to ONNX (opset {opset}): {type(e).__name__}: "
                              f"{msg}") from e
