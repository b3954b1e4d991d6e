"""DAEFR and DAEFR+ adapters.

DAEFR (Tsai et al., "Dual Associated Encoder for Face Restoration", ICLR 2024;
upstream LIAGM/DAEFR 02d5010) restores 512x512 aligned faces in [-1, 1]; the
network is :class:`adapters.daefr.arch.DAEFRNet`. The released file
``DAEFR_model.ckpt`` is a PyTorch-Lightning checkpoint with the state dict
under ``state_dict``; as upstream's ``scripts/test.py`` does, keys lacking the
leading ``vqvae.`` are accepted too, and so is a ``module.`` prefix.

DAEFR+ (IQPFR, arXiv 2503.09294, Tables 1-2) adds the zero-initialised
quality-level embedding to the association feature that enters the
Transformer (the output of ``cross_attention``, 256x16x16 at 512), so it equals
DAEFR until fine-tuned. Fine-tuning uses DAEFR's own code-prediction objective
(``training_step`` of upstream's ``DAEFRModel``): cross-entropy of the code
logits against the GT's code indices from the fixed HQ encoder and codebook,
plus 10x the MSE between the association feature and the GT's quantised
feature; the GT's level is the condition.

Fast path (default; ``exact=True`` for upstream's numerics): channels-last
convolutions only (three VQ encoders and the decoder dominate). Measured at
512² on CPU, interleaved (docs/experiments/speed.md): channels-last 1.22×, fused
SDPA in the attention blocks 0.83× and both 1.03×, so SDPA stays off; the
output is within 1e-4 × max |out| of the exact path (6.3e-5).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from iqprior.checkpoint import match_prefix
from iqprior.levels import ScoreLike

from ..base import Adapter
from ..plus import plus_builder
from ..registry import builder
from .arch import UNUSED_AT_INFERENCE, DAEFRConfig, DAEFRNet

__all__ = ["DAEFRAdapter", "build_daefr", "build_daefr_plus", "FEATURE_LOSS_WEIGHT"]

FEATURE_LOSS_WEIGHT = 10.0        # upstream training_step: BCE_loss + 10 * L2_loss
_VQ_PREFIX = "vqvae."
_TRAINING_ONLY_PREFIXES = ("loss.", "loss_LQ.")  # training-loss modules some Lightning files carry
# Parameters upstream's DAEFR stage optimises (configure_optimizers' "normal" group).
_OFFICIAL_TRAINED = ("vqvae.encoder.", "vqvae.HQ_encoder.", "vqvae.quant_conv.", "vqvae.HQ_quant_conv.",
                     "cross_attention.", "position_emb", "feat_emb.", "ft_layers.", "idx_pred_layer.")


class DAEFRAdapter(Adapter):
    """``y = model(x, score=None)``: x, y (B, 3, R, R) RGB in [0, 1], R = 512 in the released config."""

    def __init__(self, name: str, config: DAEFRConfig, options: Optional[dict[str, Any]] = None):
        super().__init__(name, options)
        self.config = config
        self.native_size = config.resolution
        self.net = DAEFRNet(config)

    def condition_shape(self) -> tuple[int, int, int]:
        """The association feature's shape ``(embed_dim, latent, latent)`` (256x16x16 released)."""
        return (self.config.embed_dim, self.config.latent_size, self.config.latent_size)

    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = None) -> torch.Tensor:
        y = self.run_net(x * 2 - 1, score=score)
        return (y + 1) / 2

    # -- official file -------------------------------------------------------------------
    def convert_official(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop training-loss entries, fix a ``module.`` prefix, restore a missing ``vqvae.``."""
        state = {k: v for k, v in state.items()
                 if not any(k.startswith((p, "module." + p)) for p in _TRAINING_ONLY_PREFIXES)}
        expected = list(self.net.state_dict().keys())
        state = match_prefix(state, expected, self.official_prefixes)
        for key in expected:
            if key not in state and key.startswith(_VQ_PREFIX) and key[len(_VQ_PREFIX):] in state:
                state[key] = state.pop(key[len(_VQ_PREFIX):])
        return state

    # -- fine-tuning ----------------------------------------------------------------------
    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """DAEFR's code-prediction losses on an (LQ, GT) batch in [0, 1], conditioned on ``score``.

        ``code_ce``: cross-entropy of the predicted code logits against the GT's
        nearest codes in the fixed HQ codebook (GT through ``Fixed_encoder``);
        ``feature_l2``: ``10 * MSE`` between the association feature (with the
        level embedding for "+") and the GT's quantised feature.
        """
        target_idx, target_feat = self.net.gt_codes(gt * 2 - 1)
        out = self.run_net(lq * 2 - 1, aux=True, decode=False, score=score)
        ce = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), target_idx.reshape(-1))
        return {"code_ce": ce, "feature_l2": FEATURE_LOSS_WEIGHT * F.mse_loss(out.feature, target_feat)}

    def trainable_parameters(self, train_base: bool = False) -> list[nn.Parameter]:
        """The level embedding; with ``train_base`` (or for plain DAEFR) also the parameters
        upstream's DAEFR stage trains (encoders, association, Transformer; not the
        decoder, codebooks or the fixed GT encoder)."""
        params = self.embedding_parameters()
        if train_base or not params:
            params += [p for k, p in self.net.named_parameters() if k.startswith(_OFFICIAL_TRAINED)]
        return params

    @staticmethod
    def unused_at_inference() -> tuple[str, ...]:
        """Submodules of ``net`` stored in the released file but not run at inference."""
        return UNUSED_AT_INFERENCE


def _make(name: str, **options: Any) -> DAEFRAdapter:
    return DAEFRAdapter(name, DAEFRConfig.from_dict(options), options)


@builder("daefr")
def build_daefr(**options: Any) -> DAEFRAdapter:
    """DAEFR, randomly initialised (``adapters.create`` loads the weights).

    Options are :class:`DAEFRConfig` fields; the defaults are the released config.
    """
    return _make("daefr", **options)


build_daefr_plus = plus_builder("daefr+", _make, doc="""DAEFR+: DAEFR with a zero-initialised level embedding on the
    Transformer's input feature (``cross_attention``'s output); the options of :func:`build_daefr`.""")
