"""PUIE-Net adapter ("puienet", "puienet+"): underwater image enhancement.

Fu et al., "Uncertainty Inspired Underwater Image Enhancement", ECCV 2022;
upstream zhenqifu/PUIE-Net (revision cba7557). The network is our own
re-implementation (:mod:`adapters.puienet.arch`) with the keys of the released
``puie.pth`` (a raw ``state_dict`` of ``mynet``: ``decoder.*`` and the VGG-16
perceptual network ``VGG16.loss_network.*``, unused at inference but loaded
strictly).

Pre- and post-processing follow ``Test_MP.py`` / ``Test_MC.py``: each side is
rounded down to a multiple of 8 with a bicubic resize (``DatasetFromFolderEval``;
here antialiased bicubic on the float image, the tensor counterpart of PIL's),
the network runs on RGB in [0, 1], and its output is in [0, 1] (not clamped).
Unlike the official script, which saves the output at the reduced size, the
output is resized back to the input size (bicubic) so ``y`` matches ``x``.
Sides below 16 (the official code cannot run them: the 1/8 bottleneck needs two
pixels for its reflection padding) are resized up to 16.

Options: ``mode`` = ``"mp"`` (prior means, default, ``Test_MP.py``) or ``"mc"``
(mean of ``samples`` = 20 outputs with latents from the prior, ``Test_MC.py``);
``generator`` (a ``torch.Generator``) makes ``"mc"`` reproducible.

"puienet+" adds the paper's level embedding (IQPFR, arXiv 2503.09294, §3.3
applied "beyond" faces, §4.3) at the bottleneck of the prior branch,
``decoder.pr_conv`` (64 channels at 1/8 scale), as a per-channel ``(64, 1, 1)``
vector that broadcasts over any spatial size; zero at init, so "puienet+"
equals "puienet" until fine-tuned. :meth:`PUIENetAdapter.finetune_losses` is
the official objective (``mynet.elbo``: MSE + VGG-16 perceptual MSE + KL of the
posterior to the prior, equal weights).

Fast path (default through ``adapters.create``; ``exact=True`` for the official
numerics): channels-last convolutions, measured 1.13x at 512² on CPU with a
deviation of ~1e-7 (docs/experiments/speed.md); there is no attention to fuse.
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
from .arch import CHANNELS, PUIENet

MODES = ("mp", "mc")
REQUIREMENTS = SPECS["puienet"].size_requirements  # Test_*.py: sides rounded down to 8; at least 16
network_size = REQUIREMENTS.network_size  # (h, w) -> the size the network runs at


class PUIENetAdapter(Adapter):
    """``y = model(x, score=None)``: x, y ``(B, 3, H, W)`` RGB in [0, 1] at any size; y not clamped."""

    size_multiple = REQUIREMENTS.multiple_of  # tiles (iqprior.tiling) are cut to this multiple, so none is resized
    native_size = None

    def __init__(self, name: str = "puienet", mode: str = "mp", samples: int = 20,
                 generator: torch.Generator | None = None, **options: Any):
        check_options(options, ("mode", "samples", "generator"), f"option(s) for {name}")
        if mode not in MODES:
            raise ValueError(f"puienet mode must be one of {MODES} ('mp': prior means, 'mc': mean of "
                             f"samples), got {mode!r}")
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ValueError(f"samples must be a positive int, got {samples!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        super().__init__(name, {"mode": mode, "samples": samples})
        self.mode = mode
        self.samples = samples
        self.generator = generator
        self.net = PUIENet()

    def condition_shape(self) -> tuple[int, int, int]:
        """One value per channel of the prior bottleneck, ``(64, 1, 1)``: any image size."""
        return (CHANNELS, 1, 1)

    def enhance(self, x: torch.Tensor, score: ScoreLike | None = None) -> torch.Tensor:
        """The network at its working size (multiples of 8), without resizing back."""
        x = check_image_batch(x)
        x = _resize(x, network_size(*x.shape[-2:]), antialias=True)
        return self.run_net(x, mode=self.mode, samples=self.samples, generator=self.generator, score=score)

    def forward(self, x: torch.Tensor, score: ScoreLike | None = None) -> torch.Tensor:
        h, w = check_image_batch(x).shape[-2:]
        return _resize(self.enhance(x, score=score), (h, w), antialias=False)

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """The official ELBO on (raw ``lq``, reference ``gt``) at the working size, conditioned on ``score``."""
        lq = check_image_batch(lq)
        gt = check_image_batch(gt, "gt")
        if lq.shape != gt.shape:
            raise ValueError(f"lq and gt must have the same shape, got {tuple(lq.shape)} and {tuple(gt.shape)}")
        size = network_size(*lq.shape[-2:])
        lq, gt = _resize(lq, size, antialias=True), _resize(gt, size, antialias=True)
        out, kl = self.run_net(lq, target=gt, generator=self.generator, score=score)
        return self.net.training_losses(out, gt, kl)



def _resize(x: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=antialias)


@builder("puienet")
def build_puienet(**options: Any) -> PUIENetAdapter:
    """PUIE-Net (random init; ``adapters.create`` loads ``puie.pth``). Options: mode, samples, generator."""
    return PUIENetAdapter("puienet", **options)


build_puienet_plus = plus_builder("puienet+", PUIENetAdapter, doc="""PUIE-Net + a zero-initialised level embedding at
    the prior bottleneck ``decoder.pr_conv``; the options of :func:`build_puienet`.""")
