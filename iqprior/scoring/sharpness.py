"""A no-reference blur measure that needs no weights: the "blur effect" of Crété-Roffet et al. (2007).

F. Crété-Roffet, T. Dolmiere, P. Ladret, M. Nicolas, "The Blur Effect: Perception
and Estimation with a New No-Reference Perceptual Blur Metric", SPIE Human Vision
and Electronic Imaging XII, 2007 (also ``skimage.measure.blur_effect``, which uses
Sobel differences and an 11-tap window instead of the paper's plain differences
and 9-tap window used here).

The idea: re-blur the image with a strong averaging filter and see how much of
its pixel-to-pixel variation survives. A sharp image loses much of it; an image
that is already blurred loses little. Per direction ``d`` (rows, columns) with
``D_F`` the absolute neighbour differences of the gray image ``F`` and ``D_B``
those of its re-blurred copy::

    b_d = 1 - sum(max(0, D_F - D_B)) / sum(D_F)

and the score is ``max(b_rows, b_cols)``, in [0, 1], **higher is blurrier**
(the spec table flips it). Because it is a ratio of the image's own variations
it does not depend on contrast, which makes it track blur across contents far
better than the absolute sharpness of a Laplacian. It reads noise as detail
(noise raises the score's "sharpness"), so it measures blur and the loss of fine
detail JPEG causes, not noise. Our implementation (iqprior), differentiable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..io import check_image_batch

#: ITU-R BT.601 luma weights (the paper works on the gray image)
LUMA = (0.299, 0.587, 0.114)


class BlurEffect(nn.Module):
    """``forward(x)``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B,)`` blur in [0, 1], higher = blurrier.

    Args:
        window: length of the 1-D averaging filter used to re-blur (the paper: 9).
    """

    def __init__(self, window: int = 9):
        super().__init__()
        if int(window) < 2:
            raise ValueError(f"window must be >= 2 pixels, got {window}")
        self.window = int(window)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        if min(x.shape[-2:]) < 2:
            raise ValueError(f"blur_effect needs images of at least 2x2 pixels, got {tuple(x.shape[-2:])}")
        gray = (x * self.luma.to(x)).sum(dim=1, keepdim=True)
        h = self.window
        per_dir = []
        for dim, kernel_shape, pad in ((2, (h, 1), (0, 0, h // 2, (h - 1) // 2)),
                                       (3, (1, h), (h // 2, (h - 1) // 2, 0, 0))):
            kernel = gray.new_full((1, 1, *kernel_shape), 1.0 / h)
            mode = "reflect" if min(gray.shape[-2:]) > h // 2 else "replicate"
            blurred = F.conv2d(F.pad(gray, pad, mode=mode), kernel)
            d_f = gray.diff(dim=dim).abs()
            d_b = blurred.diff(dim=dim).abs()
            s_f = d_f.sum(dim=(1, 2, 3))
            s_v = (d_f - d_b).clamp(min=0).sum(dim=(1, 2, 3))
            # a flat image (no variation at all) is maximally blurred: score 1
            per_dir.append(torch.where(s_f > 0, 1.0 - s_v / s_f.clamp(min=1e-12), torch.ones_like(s_f)))
        return torch.maximum(per_dir[0], per_dir[1])

    def extra_repr(self) -> str:
        return f"window={self.window}"
