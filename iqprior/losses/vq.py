"""Losses of the codebook stages (IQPFR, arXiv 2503.09294, Eqs. 6, 10, 11, 13).

- :func:`codebook_loss` (Eq. 6): ``||sg(Z_h) - Z_q||² + β ||Z_h - sg(Z_q)||²``; with
  two codebooks ``Z_q`` is the routed fusion of Eq. 2, so for an HQ+ image the HQ+
  code learns the residual between the image's latent and its common code.
- :func:`feature_loss` (Eq. 10): ``||Z_l - sg(Z_g)||²``, the LQ latent pulled to the
  fused GT latent of Eq. 13.
- :func:`index_loss` (Eq. 11): cross-entropy of the predicted code logits against
  the GT code indices, summed over the two sequences (common and HQ+).

Squared norms are means over elements (as CodeFormer/VQGAN implement them), and
the cross-entropy is a mean over positions, so the paper's weights (1, 0.5, 0.1)
apply at the usual scale.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def codebook_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float = 0.25) -> torch.Tensor:
    """Eq. 6: codebook term (moves codes to ``sg(z)``) + ``beta`` × commitment term (moves ``z``)."""
    if z.shape != z_q.shape:
        raise ValueError(f"z {tuple(z.shape)} and z_q {tuple(z_q.shape)} must have the same shape")
    return F.mse_loss(z_q, z.detach()) + beta * F.mse_loss(z, z_q.detach())


def feature_loss(z_l: torch.Tensor, z_g: torch.Tensor) -> torch.Tensor:
    """Eq. 10: mean squared distance of the LQ latent ``z_l`` to the (detached) GT latent ``z_g``."""
    if z_l.shape != z_g.shape:
        raise ValueError(f"z_l {tuple(z_l.shape)} and z_g {tuple(z_g.shape)} must have the same shape")
    return F.mse_loss(z_l, z_g.detach())


def index_loss(logits: torch.Tensor, target: torch.Tensor, logits_hq: Optional[torch.Tensor] = None,
               target_hq: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 11: ``CE(logits, target) + CE(logits_hq, target_hq)``.

    ``logits``: ``(B, N, K)`` over ``K`` codes for ``N = h*w`` positions; ``target``:
    ``(B, N)`` long. The HQ+ pair is optional (single-codebook ablation).
    """
    loss = _ce(logits, target)
    if logits_hq is not None:
        if target_hq is None:
            raise ValueError("index_loss got logits_hq without target_hq")
        loss = loss + _ce(logits_hq, target_hq)
    return loss


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if logits.dim() != 3 or target.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (B, N, K) and target (B, N), got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1).long())
