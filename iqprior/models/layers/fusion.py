"""CodeFormer's fidelity fusion and AdaIN lookup, shared by CodeFormer and the IQPFR / IQPIR family.

Zhou et al., NeurIPS 2022 (github.com/sczhou/CodeFormer, ``basicsr/archs/codeformer_arch.py``);
the authors of IQPFR kept both in their release (IQPIR, ``fengyang1399-pixel/IQPIR``):

- :class:`FuseSFTBlock` (``fuse_convs_dict.<size>``): the controllable feature
  transformation ``dec + w·(dec·scale(e) + shift(e))`` with ``e`` computed from
  the encoder feature and the decoder feature at the same size; ``w`` is the
  fidelity weight (0 skips it).
- :func:`adaptive_instance_norm`: give the looked-up latent the per-channel mean
  and std (unbiased variance + 1e-5) of the LQ latent.
"""
from __future__ import annotations

import torch
from torch import nn

from .taming import ResBlock

__all__ = ["FuseSFTBlock", "adaptive_instance_norm", "fidelity_weight"]


def _mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std (unbiased variance + eps), shapes ``(B, C, 1, 1)``."""
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(b, c, 1, 1)
    return flat.mean(dim=2).view(b, c, 1, 1), std


def adaptive_instance_norm(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Give ``content`` the channel statistics of ``style`` (both ``(B, C, H, W)``)."""
    s_mean, s_std = _mean_std(style)
    c_mean, c_std = _mean_std(content)
    return (content - c_mean) / c_std * s_std + s_mean


class FuseSFTBlock(nn.Module):
    """Controllable feature transformation: ``dec + w * (dec * scale(e) + shift(e))``, e from [enc, dec]."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.encode_enc = ResBlock(2 * in_ch, out_ch)
        self.scale = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2, True),
                                   nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.shift = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.2, True),
                                   nn.Conv2d(out_ch, out_ch, 3, padding=1))

    def forward(self, enc_feat: torch.Tensor, dec_feat: torch.Tensor, w: float | torch.Tensor = 1.0
                ) -> torch.Tensor:
        e = self.encode_enc(torch.cat([enc_feat, dec_feat], dim=1))
        return dec_feat + w * (dec_feat * self.scale(e) + self.shift(e))


def fidelity_weight(w: float | torch.Tensor) -> float | torch.Tensor:
    """A fusion weight checked: a float in [0, 1], or a 0-d / ``(B,)`` float tensor returned as ``(N, 1, 1, 1)``
    (values are not checked while tracing or compiling)."""
    if not isinstance(w, torch.Tensor):
        w = float(w)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"fidelity (CodeFormer's w) must be in [0, 1], got {w}")
        return w
    if w.dim() > 1 or not w.is_floating_point():
        raise ValueError(f"a fidelity tensor must be 0-d or (B,) floating point, got {w.dtype} {tuple(w.shape)}")
    if not torch.jit.is_tracing() and not torch.compiler.is_compiling() and bool(((w < 0) | (w > 1)).any()):
        raise ValueError(f"fidelity (CodeFormer's w) must be in [0, 1], got {w.tolist()}")
    return w.reshape(-1, 1, 1, 1)
