"""Tiny random-weight model files of spandrel's families, in their trainers' release layouts.

For tests, benchmarks and trying ``auto`` without a download: each entry builds
a small network from spandrel's own architecture class (``spandrel.architectures``)
that spandrel detects as that family, and :func:`write_tiny_file` saves its
state dict the way its upstream releases it (BasicSR ``params_ema`` / ``params``,
a Lightning ``state_dict``, a raw state dict, ``.safetensors``).

>>> from adapters.auto.tiny import write_tiny_file
>>> path = write_tiny_file("SwinIR", "swinir_tiny.pth")          # doctest: +SKIP
>>> model = adapters.create("auto+", checkpoint=path)           # doctest: +SKIP

GFPGAN has no tiny variant (spandrel builds it at its released size, 86 M
parameters, 512² only): it is listed in :data:`FULL_SIZE`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn


def _tiny() -> dict[str, tuple[Callable[[], nn.Module], str, int]]:
    """``{family: (builder, release layout, test input size)}``."""
    from spandrel.architectures import (
        ATD,
        DAT,
        DRCT,
        ESRGAN,
        HAT,
        RCAN,
        SPAN,
        Compact,
        NAFNet,
        OmniSR,
        RestoreFormer,
        SCUNet,
        Swin2SR,
        SwinIR,
    )
    swin = dict(embed_dim=12, depths=[2], num_heads=[2], window_size=4, upscale=2)
    return {
        "ESRGAN": (lambda: ESRGAN.ESRGAN(num_filters=8, num_blocks=2, scale=2), "params_ema", 32),
        "SwinIR": (lambda: SwinIR.SwinIR(**swin, upsampler="pixelshuffle"), "params", 32),
        "Swin2SR": (lambda: Swin2SR.Swin2SR(**swin, upsampler="pixelshuffle"), "params", 32),
        "HAT": (lambda: HAT.HAT(**swin, num_feat=8, squeeze_factor=4), "params_ema", 32),
        "DAT": (lambda: DAT.DAT(embed_dim=32, depth=[2], num_heads=[2], split_size=[2, 4], upscale=2), "params", 32),
        "DRCT": (lambda: DRCT.DRCT(**swin, upsampler="pixelshuffle", gc=8), "params", 32),
        "ATD": (lambda: ATD.ATD(**swin, category_size=16, num_tokens=8, reducted_dim=4,
                                upsampler="pixelshuffledirect"), "params_ema", 32),
        "SPAN": (lambda: SPAN.SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), "safetensors", 32),
        "OmniSR": (lambda: OmniSR.OmniSR(num_feat=8, window_size=4, up_scale=2), "params", 32),
        "SCUNet": (lambda: SCUNet.SCUNet(config=[1] * 7, dim=64), "raw", 64),
        "NAFNet": (lambda: NAFNet.NAFNet(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
                   "params", 32),
        "RestoreFormer": (lambda: RestoreFormer.RestoreFormer(n_embed=32, embed_dim=16, ch=32, ch_mult=(1,) * 6,
                                                              num_res_blocks=1, z_channels=16), "state_dict", 64),
        "Compact": (lambda: Compact.Compact(num_feat=8, num_conv=2, upscale=2), "params", 32),
        "RCAN": (lambda: RCAN.RCAN(n_resgroups=1, n_resblocks=1, n_feats=8, reduction=4, scale=2), "module", 32),
    }


#: families with a tiny random-weight file here (what the test suite runs the contract on)
TINY = ("ESRGAN", "SwinIR", "Swin2SR", "HAT", "DAT", "DRCT", "ATD", "SPAN", "OmniSR", "SCUNet", "NAFNet",
        "RestoreFormer", "Compact", "RCAN")
#: families tested at their released size only (slow on a CPU)
FULL_SIZE = ("GFPGAN",)
LAYOUTS = ("params_ema", "params", "state_dict", "raw", "module", "safetensors")


def tiny_network(family: str, seed: int = 0) -> nn.Module:
    """A small random-weight network of ``family`` (one of :data:`TINY`, or ``"GFPGAN"`` at full size)."""
    torch.manual_seed(seed)  # callers that must keep the global RNG wrap this in torch.random.fork_rng()
    if family == "GFPGAN":
        from spandrel.architectures.GFPGAN import GFPGAN
        return GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                      fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    table = _tiny()
    if family not in table:
        raise ValueError(f"no tiny {family!r}; choose from {', '.join(TINY)} or GFPGAN")
    return table[family][0]()


def input_size(family: str) -> int:
    """A test input side that the tiny ``family`` network runs at (512 for GFPGAN)."""
    return 512 if family == "GFPGAN" else _tiny()[family][2]


def save_layout(state: dict[str, torch.Tensor], path: str | os.PathLike, layout: str) -> Path:
    """Save ``state`` as a release in ``layout`` (:data:`LAYOUTS`; ``module`` = raw with ``module.`` keys)."""
    path = Path(path)
    state = {k: v.detach().clone().contiguous() for k, v in state.items()}
    if layout == "safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
        return path
    if layout == "raw":
        obj = state
    elif layout == "module":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif layout in ("params_ema", "params"):
        # BasicSR keeps both; the EMA weights are the ones released for inference (the raw ones differ)
        obj = {"params": state} if layout == "params" else {
            "params": {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, "params_ema": state}
    elif layout == "state_dict":
        obj = {"state_dict": state, "epoch": 3, "global_step": 1200}
    else:
        raise ValueError(f"unknown layout {layout!r}; choose from {LAYOUTS}")
    torch.save(obj, path)
    return path


def write_tiny_file(family: str, path: str | os.PathLike, layout: str | None = None, seed: int = 0) -> Path:
    """Write a tiny random-weight ``family`` model file to ``path`` in its release layout (or ``layout``)."""
    net = tiny_network(family, seed)
    if layout is None:
        layout = "params_ema" if family == "GFPGAN" else _tiny()[family][1]
    return save_layout(net.state_dict(), path, layout)
