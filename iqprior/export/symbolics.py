"""ONNX symbolics the classic exporter lacks: antialiased bilinear / bicubic resizing.

``F.interpolate(..., antialias=True)`` traces to ``aten::_upsample_bilinear2d_aa``
/ ``aten::_upsample_bicubic2d_aa``; opset 18's ``Resize`` has an ``antialias``
attribute with the same filter (PIL's: the kernel stretched by the shrink
factor, weights over the image only and renormalised, bicubic with a = -0.5).
PUIE-Net and NU2Net resize to their working size this way.
"""
from __future__ import annotations

import torch

__all__ = ["register_symbolics"]

_REGISTERED: set[int] = set()


def _resize_aa(mode: str, cubic_a: float):
    from torch.onnx.symbolic_helper import parse_args

    @parse_args("v", "v", "b", "v")
    def symbolic(g, input, output_size, align_corners, scale_factors):
        if output_size.node().mustBeNone():  # F.interpolate(scale_factor=...): not used by the ports
            raise RuntimeError(f"antialiased {mode} resize with scale_factor has no ONNX symbolic here; pass size=")
        batch_channels = g.op("Slice", g.op("Shape", input), g.op("Constant", value_t=torch.tensor([0])),
                              g.op("Constant", value_t=torch.tensor([2])))
        sizes = g.op("Concat", batch_channels, g.op("Cast", output_size, to_i=7), axis_i=0)  # 7: int64
        empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))  # no roi, no scales
        return g.op("Resize", input, empty, empty, sizes, antialias_i=1,
                    coordinate_transformation_mode_s="align_corners" if align_corners else "half_pixel",
                    cubic_coeff_a_f=cubic_a, exclude_outside_i=1, mode_s=mode)
    return symbolic


def register_symbolics(opset: int) -> None:
    """Register the antialiased resizes for ``opset`` (>= 18) with ``torch.onnx`` (once per opset)."""
    if opset in _REGISTERED:
        return
    torch.onnx.register_custom_op_symbolic("aten::_upsample_bilinear2d_aa", _resize_aa("linear", -0.75), opset)
    torch.onnx.register_custom_op_symbolic("aten::_upsample_bicubic2d_aa", _resize_aa("cubic", -0.5), opset)
    _REGISTERED.add(opset)
