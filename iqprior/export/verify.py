"""Check an exported file: ``onnx.checker``, then one onnxruntime run against PyTorch's exact path."""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

from .onnx_file import ExportError

__all__ = ["verify_export", "VERIFY_SIZE", "compare"]

# dynamic-size models are checked at another size than the traced one (TRACE_SIZE) (a multiple of 16: the models'
# "resize to the working size" branches are an identity there, so the check covers both cases)
VERIFY_SIZE = (64, 96)
# and at a size no window or stride divides: the pads a dynamic-size model needs happen there too
ODD_SIZE = (61, 83)


@torch.no_grad()
def compare(runner, model: nn.Module, x: torch.Tensor, level: Optional[torch.Tensor], **controls) -> float:
    """max |onnxruntime - PyTorch exact| on ``x`` at ``level`` (``(B,)`` long or ``None``)."""
    was = getattr(model, "exact", False)
    if hasattr(model, "set_exact"):
        model.set_exact(True)
    try:
        ref = model(x, **({} if level is None else {"score": level}), **controls).float()
    finally:
        if hasattr(model, "set_exact"):
            model.set_exact(was)
    got = runner(x, score=level, **controls)
    if got.shape != ref.shape:
        raise ExportError(f"the exported file returns shape {tuple(got.shape)}, PyTorch {tuple(ref.shape)}")
    if not torch.isfinite(got).all():
        raise ExportError("the exported file returns NaN/Inf where PyTorch does not")
    return float((got - ref).abs().max())


def verify_export(path: str | os.PathLike, model: nn.Module, seed: int = 0, threads: Optional[int] = None
                  ) -> dict[str, float]:
    """``onnx.checker`` on ``path``, then ``{check: max |onnxruntime - PyTorch exact|}`` on a random batch
    of two at levels 0 and 9 (mixed in one batch; base models: the batch alone)."""
    from .onnx_file import require_onnx
    from .runner import OnnxModel

    onnx = require_onnx()
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # onnx.checker.ValidationError and shape-inference errors
        raise ExportError(f"{path} fails onnx.checker: {' '.join(str(e).split())[:300]}") from e
    runner = OnnxModel(path, threads=threads)
    h, w = runner.input_size or VERIFY_SIZE
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed + 1))
    odd = None if runner.input_size else torch.rand(1, 3, *ODD_SIZE, generator=torch.Generator().manual_seed(seed + 2))
    if runner.is_conditioned:
        top = runner.levels - 1
        out = {f"levels 0,{top}": compare(runner, model, x, torch.tensor([0, top])),
               f"level {top}": compare(runner, model, x[:1], torch.tensor([top]))}
        if odd is not None:
            out[f"{ODD_SIZE[0]}x{ODD_SIZE[1]}"] = compare(runner, model, odd, torch.tensor([top]))
        return out
    out = {"batch of 2": compare(runner, model, x, None)}
    if odd is not None:
        out[f"{ODD_SIZE[0]}x{ODD_SIZE[1]}"] = compare(runner, model, odd, None)
    return out
