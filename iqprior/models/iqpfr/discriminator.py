"""Patch discriminator for Stage I's adversarial loss (IQPFR Eq. 5; pix2pix's PatchGAN, Isola et al. 2017).

``D(x)`` maps an image ``(B, 3, S, S)`` in [-1, 1] to a map of real/fake logits
(one per overlapping patch): a stride-2 conv stack ``ndf·(1, 2, 4, 8, ...)``
with BatchNorm and LeakyReLU(0.2), a stride-1 layer and a one-channel output.
This is also the layout of the VQGAN discriminator CodeFormer trains its
codebook with (``nc=3, ndf=64, n_layers=4``).
"""
from __future__ import annotations

from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, nc: int = 3, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.main = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, x):
        return self.main(x)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
