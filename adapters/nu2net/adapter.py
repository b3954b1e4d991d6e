"""NU2Net adapter ("nu2net", "nu2net+"): underwater image enhancement.

Guo, Wu et al., "Underwater Ranker: Learn Which Is Better and How to Be Better",
AAAI 2023; upstream RQ-Wu/UnderwaterRanker (revision f9bf350,
``all_model/NU2Net/model.py``, ``uie_demo.py``). The network is our own
re-implementation with the keys of the released ``NU2Net_ckpt.pth`` (state dict
under ``net``; the file also holds the optimizer, epoch and best scores); the
network is :class:`adapters.nu2net.arch.NU2Net`.

The demo path (``uie_demo.py``): resize to sides rounded down to multiples of 16
(torchvision ``Resize`` = antialiased bilinear; here on the float image), run,
min-max normalise again if out of [0, 1] (a no-op after the ``norm`` tail),
resize back with ``UpsamplingBilinear2d`` (bilinear, ``align_corners=True``).
Sides below 16 are resized up to 16 (the official demo cannot run them).

"nu2net+" adds the paper's level embedding (IQPFR, arXiv 2503.09294, §4.3) to
the bottleneck ``encoder.e_stage4`` (512 channels at 1/8 scale) as a per-channel
``(512, 1, 1)`` vector that broadcasts over any spatial size; zero at init.
:meth:`NU2NetAdapter.finetune_losses` is the official objective's L1 term
(``runner.build_loss`` with ``loss_coff[0] = 1``); its ranker term (weight
0.025) needs the URanker network and is not included.

No fast path: channels-last was measured 0.89x at 512² on CPU (its instance
norms, max-pools and bilinear upsampling reorder the layout), so NU2Net always
runs the exact path (docs/experiments/speed.md); ``precision`` still applies.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from iqprior.config import check_options
from iqprior.io import check_image_batch
from iqprior.levels import ScoreLike

from ..base import Adapter
from ..plus import plus_builder
from ..registry import builder
from ..specs import SPECS
from .arch import BASIC_CHANNEL, NU2Net, normalize_global

REQUIREMENTS = SPECS["nu2net"].size_requirements  # uie_demo.py: sides rounded down to 16; at least 16
network_size = REQUIREMENTS.network_size  # (h, w) -> the size the network runs at


class NU2NetAdapter(Adapter):
    """``y = model(x, score=None)``: x, y ``(B, 3, H, W)`` RGB in [0, 1] at any size; y not clamped."""

    size_multiple = REQUIREMENTS.multiple_of  # tiles (iqprior.tiling) are cut to this multiple, so none is resized
    native_size = None

    def __init__(self, name: str = "nu2net", **options: Any):
        check_options(options, (), f"option(s) for {name}")
        super().__init__(name, {})
        self.net = NU2Net()

    def condition_shape(self) -> tuple[int, int, int]:
        """One value per channel of the bottleneck, ``(512, 1, 1)``: any image size."""
        return (8 * BASIC_CHANNEL, 1, 1)

    def enhance(self, x: torch.Tensor, score: ScoreLike | None = None) -> torch.Tensor:
        """The demo path up to the final resize: the output at the working size (multiples of 16)."""
        x = check_image_batch(x)
        size = network_size(*x.shape[-2:])
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return normalize_global(self.run_net(x, score=score))

    def forward(self, x: torch.Tensor, score: ScoreLike | None = None) -> torch.Tensor:
        h, w = check_image_batch(x).shape[-2:]
        y = self.enhance(x, score=score)
        if tuple(y.shape[-2:]) != (h, w):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=True)
        return y

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """Official L1 to the reference at the working size, conditioned on the reference's ``score``."""
        lq, gt = check_image_batch(lq), check_image_batch(gt, "gt")
        if lq.shape != gt.shape:
            raise ValueError(f"lq and gt must have the same shape, got {tuple(lq.shape)} and {tuple(gt.shape)}")
        y = self.enhance(lq, score=score)
        if tuple(gt.shape[-2:]) != tuple(y.shape[-2:]):
            gt = F.interpolate(gt, size=y.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        return {"l1": F.l1_loss(y, gt)}


@builder("nu2net")
def build_nu2net(**options: Any) -> NU2NetAdapter:
    """NU2Net (random init; ``adapters.create`` loads ``NU2Net_ckpt.pth``, state dict under ``net``)."""
    return NU2NetAdapter("nu2net", **options)


build_nu2net_plus = plus_builder("nu2net+", NU2NetAdapter, doc="""NU2Net + a zero-initialised level embedding at the
    bottleneck ``encoder.e_stage4``.""")
