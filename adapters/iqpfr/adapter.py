"""IQPFR behind the adapter interface: ``adapters.create("iqpfr", checkpoint=DIR)``.

The IQPFR authors released no weights, so a checkpoint is a directory written
by ``iqprior train`` (``out/adapter``) or by ``save_pretrained``. Options are the
fields of :class:`IQPFRConfig` (e.g. ``hq_codebook_size=512``), ``preset``
(``"paper"`` default, or ``"tiny"`` for tests) and ``vqgan_checkpoint``: CodeFormer's
``vqgan_code1024.pth`` to initialise the encoder, decoder and common codebook
(not saved with the adapter: its weights are part of the saved state).

``model(x, score=9)``: x ``(B, 3, 512, 512)`` RGB in [0, 1]; ``score`` an int
level 0..9, a float score in [0, 1] or a ``(B,)`` tensor (default: level 9, as
the paper evaluates). Output in [0, 1], not clamped. IQPFR is conditioned by
construction (Eq. 7), so there is no "+" variant; ``score`` goes straight to
the network.

Fast path (default; ``exact=True`` for the reference numerics): channels-last
convolutions + fused SDPA in the VQGAN attention block, as CodeFormer (the same
VQGAN backbone); outputs within 1e-4.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import torch

from iqprior.config import check_options
from iqprior.fastpath import is_channels_last
from iqprior.levels import ScoreLike
from iqprior.models.iqpfr.config import TINY, IQPFRConfig
from iqprior.models.iqpfr.model import DEFAULT_LEVEL, IQPFR

from ..base import Adapter
from ..registry import builder

PRESETS = {"paper": IQPFRConfig(), "tiny": TINY}


class IQPFRAdapter(Adapter):
    """``y = model(x, score=None)``: x, y ``(B, 3, S, S)`` RGB in [0, 1]; the level goes to the network (built in)."""

    official_prefixes = ("module.", "net.")

    def __init__(self, net: IQPFR, options: Optional[dict[str, Any]] = None):
        if options is None:
            options = net.config.to_dict()
        super().__init__("iqpfr", options)
        self.net = net
        self.native_size = net.config.img_size

    @property
    def takes_level(self) -> bool:
        return True  # the level embedding is built in (Eq. 7): no "+" needed

    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = None) -> torch.Tensor:
        s = self.net.config.img_size
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected x of shape (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-2:] != (s, s):
            raise ValueError(f"IQPFR works on aligned {s}x{s} faces, got {tuple(x.shape[-2:])}; "
                             "use `iqprior restore` for whole photos")
        input_cl = is_channels_last(x)
        x = self.prepare_input(x * 2 - 1)  # the fast path's layout (run_net would drop ``score``)
        with self.autocast(x.device):
            out = self.net(x, score=DEFAULT_LEVEL if score is None else score)
        return self.finish_output((out.image + 1) / 2, input_cl)

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """Stage II losses (``L_feat + 0.5 L_index``); GT codes from a frozen snapshot of the encoder
        taken at the first call (for the paper's recipe, use ``iqprior train --stage 2``)."""
        from iqprior.losses.vq import feature_loss, index_loss

        if getattr(self, "_teacher", None) is None:
            object.__setattr__(self, "_teacher", copy.deepcopy(self.net.encoder).requires_grad_(False).eval())
        tg = self.net.code_targets(gt * 2 - 1, encoder=self._teacher.to(gt.device))
        out = self.net(lq * 2 - 1, score=score, decode=False)
        return {"feat": feature_loss(out.lq_feat, tg["z_g"]),
                "index": 0.5 * index_loss(out.logits, tg["indices"], out.logits_hq, tg["indices_hq"])}

    def trainable_parameters(self, train_base: bool = False) -> list[torch.nn.Parameter]:
        return list(self.net.parameters()) if train_base else self.net.stage2_parameters()


@builder("iqpfr")
def build_iqpfr(preset: str = "paper", vqgan_checkpoint: Optional[str] = None, **options: Any) -> IQPFRAdapter:
    """An :class:`IQPFRAdapter` (random init; ``vqgan_checkpoint`` initialises the Stage I parts)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    base = PRESETS[preset].to_dict()
    check_options(options, [*base, "preset", "vqgan_checkpoint"], "iqpfr option(s)")
    config = IQPFRConfig.from_dict({**base, **options})
    net = IQPFR(config)
    if vqgan_checkpoint is not None:
        net.load_vqgan_checkpoint(vqgan_checkpoint)
    return IQPFRAdapter(net, {**config.to_dict()})
