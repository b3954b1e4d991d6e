"""IQPIR: the IQPFR authors' released model, ``adapters.create("iqpir", checkpoint=FILE)``.

Xiao, Hu et al., "Beyond Ground-Truth: Leveraging Image Quality Priors for
Real-World Image Restoration", CVPR 2026 (github.com/fengyang1399-pixel/IQPIR
at a4408c7; the paper this project implements is its preprint, arXiv 2503.09294).
Their network is CodeFormer's with ``quantizer_type='dual_codebook'`` and
``score_embedding='add'``; here it is :class:`iqprior.models.iqpfr.IQPFR` with
the :data:`~iqprior.models.iqpfr.config.IQPIR` options (one joint prediction
head, AdaIN lookup, fidelity fusion blocks), one network family with the
paper's IQPFR.

The released file (``{"params_ema": state_dict}``, 517 entries) loads strictly
after renaming two prefixes (:data:`OFFICIAL_RENAMES`); a ``save_pretrained``
directory loads as for every adapter.

``model(x, score=9, fidelity=None)``: x ``(B, 3, 512, 512)`` RGB in [0, 1]
(aligned faces); ``score`` an int level 0..9, a float score in [0, 1] (level
``floor(10·s)``, computed in the score's own precision as their code does) or a
``(B,)`` tensor; default level 9 (their README's ``-score 0.9``). Output =
their ``forward(x, score, w, adain=True)[0]`` mapped ``(out + 1) / 2``, not
clamped. Options: ``alpha`` (their ``aesthetic_weight``, a constructor argument
not stored in the file; default 0.5 as their inference script), ``fidelity``
(their ``w``; default 0 as their README command; per call too), ``preset``
(``"released"``, or ``"tiny"`` for tests).

Fast path (default; ``exact=True`` for their numerics): channels-last
convolutions + fused attention, as CodeFormer and IQPFR.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from iqprior.checkpoint import match_prefix
from iqprior.config import check_options
from iqprior.fastpath import is_channels_last
from iqprior.levels import ScoreLike
from iqprior.models.iqpfr.config import IQPIR, TINY_IQPIR, IQPFRConfig
from iqprior.models.iqpfr.model import DEFAULT_LEVEL, IQPFR
from iqprior.models.layers.fusion import fidelity_weight

from ..iqpfr.adapter import IQPFRAdapter
from ..registry import builder

PRESETS = {"released": IQPIR, "tiny": TINY_IQPIR}

# official key prefix -> ours; every other key is the same in both (the joint head, the fusion blocks included)
OFFICIAL_RENAMES = (("quantize_aesthetic.", "quantize_hq."), ("score_embed.", "score_embedding."))


def our_key(key: str) -> str:
    """The name of an official ``state_dict`` key in :class:`IQPFR` (``quantize_aesthetic.*`` -> ``quantize_hq.*``)."""
    for official, ours in OFFICIAL_RENAMES:
        if key.startswith(official):
            return ours + key[len(official):]
    return key


def official_key(key: str) -> str:
    """The inverse of :func:`our_key`."""
    for official, ours in OFFICIAL_RENAMES:
        if key.startswith(ours):
            return official + key[len(ours):]
    return key


class IQPIRAdapter(IQPFRAdapter):
    """The released IQPIR network; see the module docstring (``fidelity``: a per-call control, in its spec)."""

    def __init__(self, net: IQPFR, fidelity: float = 0.0, options: Optional[dict[str, Any]] = None):
        super().__init__(net, options)
        self.adapter_name = "iqpir"
        self.fidelity = fidelity_weight(float(fidelity))

    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = None,
                fidelity: Optional[float | torch.Tensor] = None) -> torch.Tensor:
        """Restore aligned faces ``x`` (B, 3, S, S) in [0, 1]; ``fidelity`` overrides the option per call
        (a float, or a tensor of one value or one per image)."""
        s = self.net.config.img_size
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected x of shape (B, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.shape[-2:] != (s, s):
            raise ValueError(f"IQPIR works on aligned {s}x{s} faces, got {tuple(x.shape[-2:])}; "
                             "use `iqprior restore` for whole photos")
        w = self.fidelity if fidelity is None else fidelity_weight(fidelity)
        input_cl = is_channels_last(x)
        x = self.prepare_input(x * 2 - 1)
        with self.autocast(x.device):
            out = self.net(x, score=DEFAULT_LEVEL if score is None else score, fidelity=w)
        return self.finish_output((out.image + 1) / 2, input_cl)

    def convert_official(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The released state dict (official keys, optionally ``module.``-prefixed) under our keys."""
        expected = [official_key(k) for k in self.net.state_dict()]
        state = match_prefix(state, expected, self.official_prefixes)
        return {our_key(k): v for k, v in state.items()}


@builder("iqpir")
def build_iqpir(alpha: float = 0.5, fidelity: float = 0.0, preset: str = "released", **options: Any
                ) -> IQPIRAdapter:
    """An :class:`IQPIRAdapter` (random init; ``adapters.create("iqpir", checkpoint=FILE)`` loads the release)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    check_options(options, ["alpha", "fidelity", "preset"], "iqpir option(s)")
    alpha = float(alpha)
    if not alpha >= 0.0:
        raise ValueError(f"alpha (their aesthetic_weight) must be >= 0, got {alpha}")
    config = IQPFRConfig.from_dict({**PRESETS[preset].to_dict(), "alpha": alpha})
    saved: dict[str, Any] = {"alpha": alpha, "fidelity": float(fidelity)}
    if preset != "released":
        saved["preset"] = preset
    return IQPIRAdapter(IQPFR(config), fidelity=fidelity, options=saved)
