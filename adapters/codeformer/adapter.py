"""CodeFormer and CodeFormer+ adapters.

CodeFormer: Zhou et al., NeurIPS 2022 (github.com/sczhou/CodeFormer at
b33cc7d); network in :mod:`adapters.codeformer.arch`. The adapter maps [0, 1]
RGB to the network's [-1, 1] (mean 0.5, std 0.5), runs the official inference
forward (``w`` = ``fidelity``, top-1 code lookup, ``adain=True``) and returns
``(out + 1) / 2``, not clamped.

CodeFormer+ (IQPFR, arXiv 2503.09294, Eq. 7): a zero-initialised level
embedding of the latent's shape (256×16×16) is added to the LQ encoder's output
``lq_feat`` — the input of the Transformer, ``net.lq_feat`` — through :func:`iqprior.condition`;
the network is not edited, so at init the output equals CodeFormer's for every
score. Fine-tuning (:meth:`CodeFormerAdapter.finetune_losses`) uses CodeFormer's
stage-II objective with the GT image's level as the condition.

Fast path (default; ``exact=True`` for upstream's numerics): channels-last
convolutions (the VQGAN encoder, generator and fusion blocks are most of the
time) + fused SDPA in the Transformer (``need_weights=False``) and the VQGAN
attention block. Measured at 512² on CPU (docs/experiments/speed.md): channels-last
is the gain, SDPA about neutral; the output moves by float rounding only (well
inside 1e-4 × max |out|, as the fidelity fusion amplifies little in fp32). A
top-1 code can flip only where two logits tie to ~1e-6.

>>> import adapters
>>> model = adapters.create("codeformer+", checkpoint="codeformer.pth", fidelity=0.5)  # doctest: +SKIP
>>> y = model(x, score=9)      # x: (B, 3, 512, 512) RGB in [0, 1]
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F

from iqprior.levels import ScoreLike
from iqprior.models.layers.fusion import fidelity_weight

from ..base import Adapter
from ..plus import plus_builder
from ..registry import builder
from .arch import CodeFormer, CodeFormerConfig

__all__ = ["CodeFormerAdapter", "build_codeformer", "build_codeformer_plus", "STAGE2_LOSS_WEIGHTS"]

# CodeFormer stage II (options/CodeFormer_stage2.yml): feat_loss_weight 1.0, entropy_loss_weight 0.5
STAGE2_LOSS_WEIGHTS = {"feat": 1.0, "code_ce": 0.5}
# upstream freezes these in every stage after I (fix_modules=['quantize', 'generator'])
FROZEN_MODULES = ("quantize", "generator")


class CodeFormerAdapter(Adapter):
    """``y = model(x, score=None)``: x ``(B, 3, S, S)`` RGB in [0, 1], S = 512 released; y not clamped.

    Options: ``fidelity`` (upstream ``w``, in [0, 1], default 0.5; 0 skips the
    fusion blocks), ``config`` (a dict of :class:`CodeFormerConfig` fields, for
    tiny test models), ``vqgan_checkpoint`` (``vqgan_code1024.pth``: the frozen
    HQ VQGAN that gives the GT codes when fine-tuning; without it a frozen copy
    of this network's encoder, taken at the first fine-tuning step, stands in).
    """

    def __init__(self, name: str = "codeformer", fidelity: float = 0.5,
                 config: Optional[CodeFormerConfig | Mapping[str, Any]] = None,
                 vqgan_checkpoint: Optional[str | os.PathLike] = None):
        fidelity = float(fidelity)
        if not 0.0 <= fidelity <= 1.0:
            raise ValueError(f"fidelity (CodeFormer's w) must be in [0, 1], got {fidelity}")
        cfg = CodeFormerConfig.from_options(config)
        options: dict[str, Any] = {"fidelity": fidelity}
        if cfg != CodeFormerConfig():
            options["config"] = cfg.to_dict()
        if vqgan_checkpoint is not None:
            options["vqgan_checkpoint"] = str(vqgan_checkpoint)
        super().__init__(name, options)
        self.fidelity = fidelity
        self.native_size = cfg.img_size
        self.vqgan_checkpoint = vqgan_checkpoint
        self.net = CodeFormer(cfg)
        object.__setattr__(self, "_hq_encoder", None)  # built on first finetune_losses; not a submodule

    @property
    def config(self) -> CodeFormerConfig:
        return self.net.config

    def condition_shape(self) -> tuple[int, int, int]:
        """The latent's shape ``(emb_dim, L, L)``: one level embedding value per element of ``lq_feat``."""
        return self.config.latent_shape

    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = None, fidelity: Optional[float] = None
                ) -> torch.Tensor:
        """Restore aligned faces ``x`` (B, 3, S, S) in [0, 1]; ``fidelity`` overrides the option per call
        (a float, or a tensor of one value or one per image)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected x of shape (B, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        w = self.fidelity if fidelity is None else fidelity_weight(fidelity)
        out = self.run_net((x - 0.5) / 0.5, w=w, adain=True, score=score)[0]
        return (out + 1) / 2

    # -- fine-tuning ----------------------------------------------------------------------
    def trainable_parameters(self, train_base: bool = False) -> list[torch.nn.Parameter]:
        """The level embedding; with ``train_base`` also the encoder, Transformer and fusion blocks
        (codebook and generator stay frozen, as upstream's ``fix_modules``)."""
        params = self.embedding_parameters()
        if train_base or not params:
            params += [p for n, p in self.net.named_parameters() if n.split(".")[0] not in FROZEN_MODULES]
        return params

    def _hq_codes(self, gt: torch.Tensor) -> torch.Tensor:
        """Code indices ``(B, L*L)`` of the GT images (in [0, 1]) from the frozen HQ VQGAN."""
        enc = self._hq_encoder
        if enc is None:
            from iqprior.models.vqgan import Encoder

            enc = Encoder(self.config.vqgan)
            if self.vqgan_checkpoint is not None:
                from iqprior.checkpoint import load_strict, match_prefix, read_official_checkpoint
                from iqprior.models.vqgan import VQAutoEncoder
                vq = VQAutoEncoder(self.config.vqgan)
                state = read_official_checkpoint(self.vqgan_checkpoint, self.official_wrapper_keys)
                load_strict(vq, match_prefix(state, vq.state_dict().keys()), source=str(self.vqgan_checkpoint))
                enc = vq.encoder
            else:  # stand-in: this network's encoder as it is now (its output hook is not copied)
                enc.load_state_dict(self.net.encoder.state_dict())
            enc.requires_grad_(False).eval()
            object.__setattr__(self, "_hq_encoder", enc)
        enc.to(gt.device)
        with torch.no_grad():
            _, _, info = self.net.quantize(enc((gt - 0.5) / 0.5))
        return info["indices"]

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """CodeFormer stage-II losses with ``score`` (the GT's level) as the condition.

        ``feat``: ``mean((Z_q(gt) - lq_feat)^2)`` (feature L2 to the quantized GT
        feature); ``code_ce``: ``0.5 * CE(logits, codes(gt))``. lq, gt: (B, 3, S, S) in [0, 1].
        """
        idx = self._hq_codes(gt)
        logits, lq_feat = self.run_net((lq - 0.5) / 0.5, w=0.0, code_only=True, score=score)
        c, l, _ = self.config.latent_shape
        quant_gt = self.net.quantize.get_codebook_feat(idx, (idx.shape[0], l, l, c)).detach()
        return {"feat": STAGE2_LOSS_WEIGHTS["feat"] * torch.mean((quant_gt - lq_feat) ** 2),
                "code_ce": STAGE2_LOSS_WEIGHTS["code_ce"] * F.cross_entropy(logits.permute(0, 2, 1), idx)}


@builder("codeformer")
def build_codeformer(fidelity: float = 0.5, config: Optional[CodeFormerConfig | Mapping[str, Any]] = None,
                     vqgan_checkpoint: Optional[str] = None) -> CodeFormerAdapter:
    """CodeFormer (random init; ``adapters.create`` loads ``codeformer.pth``)."""
    return CodeFormerAdapter("codeformer", fidelity=fidelity, config=config, vqgan_checkpoint=vqgan_checkpoint)


build_codeformer_plus = plus_builder("codeformer+", CodeFormerAdapter, mode=True, doc="""CodeFormer+: CodeFormer with a
    level embedding added to ``lq_feat`` (paper Eq. 7); the options of :func:`build_codeformer`, and ``mode="adain"``
    for the paper's AdaIN-style ablation instead of addition.""")
