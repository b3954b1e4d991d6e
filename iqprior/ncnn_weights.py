"""Reading the weights of an ncnn model (``.param`` text + ``.bin`` blob) in plain Python.

ncnn (Tencent, BSD-3) stores a network as a text graph (``.param``: a magic
``7767517``, the layer and blob counts, then one line per layer: type, name,
input and output counts, blob names, ``key=value`` parameters) and one binary
blob (``.bin``) holding the layers' weights in graph order. Only two weighted
layer types occur in the Real-ESRGAN models this project reads:

* ``Convolution``: ``0`` = output channels, ``1`` = kernel size, ``5`` = has a
  bias, ``6`` = number of weights. The weights are stored with a 4-byte tag
  (``0x01306B47`` = float16, ``0`` = float32), float16 data padded to 4 bytes;
  the bias follows untagged, float32. The weight layout is
  ``(out, in, k, k)``, PyTorch's.
* ``PReLU``: ``0`` = number of slopes, float32, untagged.

Every other layer type here (Input, Split, Concat, Eltwise, BinaryOp, Interp,
PixelShuffle) holds no weights. :func:`read_ncnn` checks that the blob is used
to the last byte, so a layer type it does not know, a truncated blob or a
wrong pairing of files fails loudly instead of shifting every later tensor.
No ncnn, Vulkan or compiled code is involved.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAGIC = "7767517"
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
WEIGHTED = ("Convolution", "PReLU")
WEIGHTLESS = ("Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU", "Crop")


@dataclass
class NcnnLayer:
    """One layer of the graph: its type, name, input/output blob names, parameters and (for weighted ones) arrays."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[str, str]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)   # "weight", "bias" (Convolution), "slope" (PReLU)
    stored_dtype: str = ""                                          # "float16" / "float32": how the weights were stored


class NcnnFormatError(ValueError):
    """The ``.param``/``.bin`` pair is not a model this reader understands."""


def parse_param(text: str) -> list[NcnnLayer]:
    """The layers of an ncnn ``.param`` text file, in graph order."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != [MAGIC]:
        raise NcnnFormatError(f"not an ncnn .param file (first line {' '.join(lines[0]) if lines else ''!r}, "
                              f"expected {MAGIC})")
    count = int(lines[1][0])
    layers = []
    for tokens in lines[2:]:
        n_in, n_out = int(tokens[2]), int(tokens[3])
        blobs = tokens[4:4 + n_in + n_out]
        params = dict(t.split("=", 1) for t in tokens[4 + n_in + n_out:])
        layers.append(NcnnLayer(tokens[0], tokens[1], blobs[:n_in], blobs[n_in:], params))
    if len(layers) != count:
        raise NcnnFormatError(f".param announces {count} layers but lists {len(layers)}")
    return layers


class _Blob:
    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise NcnnFormatError(f".bin ends at byte {len(self.data)}, a layer needs bytes "
                                  f"{self.offset}..{self.offset + n} (truncated, or not this .param's weights)")
        out = self.data[self.offset:self.offset + n]
        self.offset += n
        return out

    def floats(self, n: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * n), dtype="<f4").copy()

    def tagged(self, n: int) -> tuple[np.ndarray, str]:
        tag = int.from_bytes(self.take(4), "little")
        if tag == TAG_FP16:
            raw = self.take((2 * n + 3) // 4 * 4)
            return np.frombuffer(raw[:2 * n], dtype="<f2").astype(np.float32), "float16"
        if tag == TAG_FP32:
            return self.floats(n), "float32"
        raise NcnnFormatError(f"weights at byte {self.offset - 4} carry storage tag {tag:#010x}; only float16 "
                              f"({TAG_FP16:#010x}) and float32 (0) are read (int8 / quantised models are not)")


def read_ncnn(param_text: str, bin_data: bytes) -> list[NcnnLayer]:
    """Parse ``.param`` and fill each weighted layer's arrays from ``.bin`` (float32 arrays, exact upcasts)."""
    layers = parse_param(param_text)
    blob = _Blob(bin_data)
    for layer in layers:
        if layer.type == "Convolution":
            out_ch, k, n = int(layer.params["0"]), int(layer.params.get("1", "1")), int(layer.params["6"])
            if n % (out_ch * k * k):
                raise NcnnFormatError(f"{layer.name}: {n} weights are not out={out_ch} x in x {k}x{k}")
            w, layer.stored_dtype = blob.tagged(n)
            layer.arrays["weight"] = w.reshape(out_ch, n // (out_ch * k * k), k, k)
            if layer.params.get("5", "0") == "1":
                layer.arrays["bias"] = blob.floats(out_ch)
        elif layer.type == "PReLU":
            layer.arrays["slope"] = blob.floats(int(layer.params.get("0", "1")))
            layer.stored_dtype = "float32"
        elif layer.type not in WEIGHTLESS:
            raise NcnnFormatError(f"layer {layer.name} has type {layer.type}, which this reader does not know "
                                  f"(it may hold weights)")
    if blob.offset != len(bin_data):
        raise NcnnFormatError(f".bin has {len(bin_data) - blob.offset} bytes left after the last layer "
                              f"(not this .param's weights?)")
    return layers
