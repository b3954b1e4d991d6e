"""The injection table of ``auto+``: one entry per spandrel architecture family.

Each entry names the submodule of spandrel's network whose output gets the
level embedding, and why: the paper (IQPFR, arXiv 2503.09294, §3.3, §4.3) adds
it to the deepest feature entering the restoration body or decoder (CodeFormer's
``Z_l``). The embedding is one vector per channel (``(C, 1, 1)`` for feature
maps, ``(1, C)`` for tokens ``(B, L, C)``), so it fits any input size, except
where the network works at one size only (GFPGAN: the full ``(C, 4, 4)`` map,
as the paper's ``(256, 16, 16)``).

A family without an entry gets the automatic choice of :mod:`adapters.auto.probe`
and a warning naming the module; ``condition_at=NAME`` (``--option
condition_at=NAME``) overrides any choice. :data:`UNSUPPORTED` lists the
families that cannot run this way, with the reason.
:func:`adapters.auto.table.families_markdown` writes the docs table from these tables.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from iqprior.fastpath import FastPath

#: input noise level of DRUNet / FDnCNN (spandrel's and KAIR's default, 15/255)
NOISE_LEVEL = 15 / 255

Call = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Family:
    """How ``auto`` / ``auto+`` run one spandrel architecture.

    Attributes:
        at: the submodule whose output gets the embedding, or a function of the
            network returning it; ``None`` = the automatic choice (no warning).
        why: the reason for ``at`` (shown in the docs).
        shape: a function of the network giving the embedding's full shape (a
            fixed-size network); ``None`` = one value per channel, from a probe forward.
        call: ``call(net, x, **kwargs)`` replacing spandrel's ``call_fn`` (batch-safe,
            or passing the caller's keyword arguments through); ``None`` = spandrel's.
        signed: the network works in [-1, 1] (the input is mapped from [0, 1] and
            the output back), as the upstream inference code does.
        prepare: run once on the network after loading (e.g. make it thread-safe).
        fast_path: the inference measures for this family (default: none, the exact path), from
            measurements (Compact: channels-last, 1.19x on CPU, docs/guides/large-images-and-video.md).
        every_call: the call runs the conditioned module more than once per image (a
            large image split into parts): each run gets the embedding.
    """

    at: Union[None, str, Callable[[nn.Module], str]] = None
    why: str = ""
    shape: Optional[Callable[[nn.Module], tuple[int, ...]]] = None
    call: Optional[Call] = None
    signed: bool = False
    prepare: Optional[Callable[[nn.Module], None]] = None
    every_call: bool = False
    fast_path: Optional[FastPath] = None

    def at_for(self, net: nn.Module) -> Optional[str]:
        return self.at(net) if callable(self.at) else self.at


def _with_noise_map(net: nn.Module, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """DRUNet / FDnCNN: the input plus a constant noise-level channel, for any batch size."""
    noise = torch.full((x.shape[0], 1, *x.shape[-2:]), NOISE_LEVEL, dtype=x.dtype, device=x.device)
    return net(torch.cat([x, noise], dim=1), **kwargs)


def _dncnn(net: nn.Module, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return _with_noise_map(net, x, **kwargs) if getattr(net, "mode", "") == "FDnCNN" else net(x, **kwargs)


def _first(net: nn.Module, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return net(x, **kwargs)[0]


def _gfpgan(net: nn.Module, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """GFPGAN without the intermediate RGB outputs (the image is the same; ``randomize_noise`` passes through)."""
    return net(x, return_rgb=False, **kwargs)[0]


_UPDATE_LOCK = threading.Lock()


class _Serialized:
    """A bound method run under one lock (deep-copied with its module, shared by replicas)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _UPDATE_LOCK:
            return self.fn(*args, **kwargs)

    def __deepcopy__(self, memo: dict) -> _Serialized:
        return _Serialized(copy.deepcopy(self.fn, memo))


def _serialize_reparam(net: nn.Module) -> None:
    """SPAN's re-parameterised convs rebuild their eval weights on every eval call (``update_params``
    swaps ``eval_conv.weight.data``); a thread convolving while another swaps reads freed memory. Each
    such conv (rebuild + convolution) runs under one lock; the values are the same as without it.
    The eval weights are rebuilt once here, so the state dict is the same before and after any call
    (a fine-tune of the embedding alone leaves every network weight bit-identical)."""
    for m in net.modules():
        if hasattr(m, "eval_conv") and callable(getattr(type(m), "update_params", None)):
            with torch.no_grad():
                m.update_params()
            m.forward = _Serialized(m.forward)


_SWIN = ("the deep feature (B, C, H, W) that enters conv_after_body: the output of the residual transformer "
         "groups, after the final norm, at the input resolution")

FAMILIES: dict[str, Family] = {
    "GFPGAN": Family("final_conv", "the last U-Net encoder feature (4x4 at 512²) before the StyleGAN2 decoder: it "
                     "feeds the style code and the decoder's first skip (the paper's Z_l position)",
                     shape=lambda net: (net.final_conv.out_channels, 4, 4), call=_gfpgan, signed=True),
    "RestoreFormer": Family("quantize", "the quantised latent (the codebook lookup's output) that the decoder reads"),
    "SwinIR": Family("patch_unembed", _SWIN),
    "Swin2SR": Family("patch_unembed", _SWIN),
    "HAT": Family("patch_unembed", _SWIN),
    "DRCT": Family("patch_unembed", _SWIN),
    "ATD": Family("patch_unembed", _SWIN),
    "DAT": Family("norm", "the deep feature before conv_after_body, as tokens (B, H·W, C) after the final norm"),
    "ESRGAN": Family("model.1", "the RRDB trunk output (shallow feature + trunk, the ShortcutBlock) before "
                     "upsampling",
                     # one value per trunk channel (the first conv's width): no probe forward through 23 RRDBs
                     shape=lambda net: (int(net.model[0].out_channels), 1, 1)),
    "SPAN": Family("conv_cat", "the fused body feature (shallow feature and block outputs) entering the upsampler",
                   prepare=_serialize_reparam),
    "OmniSR": Family("residual_layer", "the output of the Omni-SR body before its output conv and the long skip"),
    "SCUNet": Family("m_body", "the U-Net's middle block (1/8 resolution)"),
    "NAFNet": Family("middle_blks", "the U-Net's middle blocks (the lowest resolution)"),
    "DRUNet": Family("m_body", "the U-Net's middle block (1/8 resolution)", call=_with_noise_map),
    "DnCNN": Family(None, "automatic (a plain conv stack)", call=_dncnn),
    "FBCNN": Family(None, "automatic", call=_first),
    "MMRealSR": Family(None, "automatic", call=_first),
    "RetinexFormer": Family(None, "automatic; images over 3000 px run as two interlaced halves", every_call=True),
    "Compact": Family(lambda net: f"body.{len(net.body) - 2}",
                      "the last body activation before the conv that feeds the pixel shuffle",
                      fast_path=FastPath(channels_last=True)),
}

#: families spandrel loads that ``auto`` cannot run as an image-to-image model, with the reason
UNSUPPORTED: dict[str, str] = {
    "LaMa": "inpainting: needs a mask input besides the image (spandrel's MaskedImageModelDescriptor)",
}


def family(arch_id: str) -> Optional[Family]:
    """The entry of ``arch_id`` (spandrel's architecture id), or ``None``."""
    return FAMILIES.get(arch_id)
