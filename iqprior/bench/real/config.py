"""Settings of ``iqprior bench real`` (:class:`RealConfig`): the model, the photos, the members, the recipe."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..control.config import check_sizes
from ..control.data import Regime

#: the released restorer made "+" by default: Real-ESRGAN's SRVGGNetCompact ×4 (docs/experiments/real.md says why)
DEFAULT_CHECKPOINT = "realesr-animevideov3.pth"
#: the level embedding's place in SRVGGNetCompact's ``body`` (conv, act, 16 x (conv, act), conv): the activation
#: after the 8th of its 16 body convolutions, half-way; see :func:`inject_point`
INJECT_FRACTION = 0.5
#: published no-reference members that label the training GTs (the library's scorer, min-max calibrated on them)
LABEL_MEMBERS = ("niqe", "brisque")
#: published no-reference members only evaluated, never used for labels: the check against gaming the labellers
HELDOUT_MEMBERS = ("piqe",)
#: GT imperfection (grade 0..9 at the GT's pixel scale) and the LQ's Eq. 16 ranges at the GT's size, before the
#: model's 1/scale resize; docs/experiments/real.md, "Data"
REGIME = Regime(gt_blur=2.5, gt_noise=0.0, gt_jpeg=(95, 40), lq_blur=(0.5, 2.0), lq_down=(1.0, 1.5),
                lq_noise=(0.0, 10.0), lq_jpeg=(70.0, 95.0), label_members=LABEL_MEMBERS)


@dataclass(frozen=True)
class RealConfig:
    """Settings of :func:`iqprior.bench.real.run_real`; the defaults fit 20 minutes on 2 CPU cores."""

    out: Path = Path("results/real")
    #: ``auto+`` on this model file (a weights-registry name or a path); nothing is downloaded
    checkpoint: str = DEFAULT_CHECKPOINT
    #: the submodule that gets the level embedding; ``None``: half-way through a Compact body, else auto+'s table
    inject_at: Optional[str] = None
    steps: int = 1000
    batch: int = 8
    #: training GT crop (the LQ input is ``crop / scale`` px) and the item each is cut from (what is labelled)
    crop: int = 64
    support: int = 192
    pool: int = 512
    lr: float = 2e-4
    #: the embedding's learning rate (it starts at zero; the network's weights start trained)
    embedding_lr: float = 2e-2
    #: ``"mse"`` (default: its minimiser is the conditional mean, so level 9 aims at the best PSNR against the pristine
    #: source, as in bench control) or ``"l1"`` (``auto+``'s fine-tuning loss; a pilot lost 0.8 dB at level 9 with it)
    loss: str = "mse"
    seed: int = 0
    eval_draws: int = 2
    #: how the calibrated ensemble score becomes a level: ``"rank"`` (a tenth of the GTs per level) or ``"floor"``
    #: (the paper's ``floor(10 s)``, which left levels 0-2 without a GT here: docs/experiments/real.md)
    level_rule: str = "rank"
    label_members: tuple[str, ...] = LABEL_MEMBERS
    heldout_members: tuple[str, ...] = HELDOUT_MEMBERS
    regime: Regime = field(default=REGIME)
    threads: Optional[int] = None
    progress: bool = True

    def __post_init__(self):
        check_sizes(self, ("steps", "batch", "pool", "eval_draws"))
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"loss must be 'l1' or 'mse', got {self.loss!r}")
        if self.level_rule not in ("rank", "floor"):
            raise ValueError(f"level_rule must be 'rank' or 'floor', got {self.level_rule!r}")
        if not self.label_members:
            raise ValueError("label_members must name at least one no-reference member")
        both = set(self.label_members) & set(self.heldout_members)
        if both:
            raise ValueError(f"a held-out member must not label the GTs: {sorted(both)} in both lists")
        if not self.heldout_members:
            raise ValueError("heldout_members must name at least one member not used for labels")
