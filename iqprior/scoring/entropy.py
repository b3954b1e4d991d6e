"""Grey-level entropy (MATLAB ``entropy``), pyiqa's ``entropy`` member with a histogram in O(H·W).

pyiqa (chaofengc/IQA-PyTorch, ``pyiqa/archs/entropy_arch.py``) takes the Y
channel of YIQ at 0..255 (rounded), counts the 256 grey levels with a
``one_hot`` of every pixel summed over the image — an ``(H·W, 256)`` int64
tensor, 512 MB for one 512² image and about 2-3 s on two CPU threads — and
returns ``-sum(p · log2(p + 1e-8))``. Here the counts come from one
``torch.bincount`` over the batch: the same integers, so the same scores bit
for bit (``tests/test_scoring_entropy.py`` checks it against pyiqa), in
milliseconds. The Y channel is pyiqa's own ``to_y_channel``.

Input ``(B, 3, H, W)`` RGB in [0, 1]; output ``(B,)`` in [0, 8] bits, higher is
better (more texture). Not differentiable (histogram).
"""
from __future__ import annotations

import torch
from torch import nn

LEVELS = 256


def grey_entropy(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Entropy in bits of each image's 256-level Y histogram; ``x`` (B, 3, H, W) in [0, 1] -> (B,)."""
    from pyiqa.utils.color_util import to_y_channel

    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) RGB images, got {tuple(x.shape)}")
    b = x.shape[0]
    levels = to_y_channel(x, 255.0, "yiq").long().flatten(1)            # (B, H*W), 0..255
    if levels.numel() and (int(levels.min()) < 0 or int(levels.max()) >= LEVELS):
        raise ValueError("entropy expects images in [0, 1]")
    offsets = torch.arange(b, device=x.device)[:, None] * LEVELS
    hist = torch.bincount((levels + offsets).flatten(), minlength=b * LEVELS).view(b, LEVELS)
    hist = hist / hist.sum(dim=1, keepdim=True)
    return -torch.sum(hist * torch.log2(hist + eps), dim=1)


class Entropy(nn.Module):
    """The ``entropy`` ensemble member: ``forward(x)`` -> ``(B,)`` bits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grey_entropy(x)
