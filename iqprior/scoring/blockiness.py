"""A no-reference JPEG blocking measure that needs no weights: boundary-to-interior gradient ratio.

JPEG codes 8x8 blocks independently; at low quality the steps between blocks
become visible. After Wang, Sheikh & Bovik, "No-reference perceptual quality
assessment of JPEG compressed images", ICIP 2002 (their blockiness feature is
the mean absolute difference across block boundaries), normalised here by the
mean absolute difference *inside* the blocks so that it does not depend on
contrast or content::

    r_d = max_p mean(|D_d| at phase p) / mean(|D_d| at the other 7 phases)

for each direction ``d`` (rows, columns), ``D_d`` the neighbour differences of
the gray image and the phase ``p`` (position modulo 8) searched, so the block
grid need not start at pixel 0 (a cropped JPEG). The score is the mean of
``r_rows`` and ``r_cols``: about 1 for an image without blocks, larger with
stronger blocking, **higher is worse** (the spec table flips it). It sees JPEG,
not blur or noise, so it complements ``blur_effect``. The ratio form and the
phase search are ours (iqprior); differentiable almost everywhere.
"""
from __future__ import annotations

import torch
from torch import nn

from ..io import check_image_batch
from .sharpness import LUMA


class Blockiness(nn.Module):
    """``forward(x)``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B,)`` blocking ratio >= ~1, higher = blockier.

    Args:
        block: block size of the codec (JPEG: 8).
    """

    def __init__(self, block: int = 8):
        super().__init__()
        if int(block) < 2:
            raise ValueError(f"block must be >= 2 pixels, got {block}")
        self.block = int(block)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        b = self.block
        if min(x.shape[-2:]) < 2 * b:
            raise ValueError(f"blockiness needs images of at least {2 * b}x{2 * b} pixels, got {tuple(x.shape[-2:])}")
        gray = (x * self.luma.to(x)).sum(dim=1) * 255.0            # (B, H, W)
        ratios = []
        for dim in (1, 2):
            d = gray.diff(dim=dim).abs()                           # difference between pixel j and j + 1
            d = d.mean(dim=3 - dim)                                # (B, L): mean over the other axis
            pos = torch.arange(d.shape[-1], device=d.device) % b
            phase = torch.stack([d[:, pos == p].mean(dim=1) for p in range(b)], dim=1)   # (B, b)
            total = phase.sum(dim=1, keepdim=True)
            rest = (total - phase) / (b - 1)                       # mean of the other phases
            ratios.append((phase / rest.clamp(min=1e-6)).amax(dim=1))
        return 0.5 * (ratios[0] + ratios[1])

    def extra_repr(self) -> str:
        return f"block={self.block}"
