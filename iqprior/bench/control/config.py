"""Settings of ``iqprior bench control`` (:class:`ControlConfig`) and the scorer members it uses."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .data import LQ_FROM, REGIMES, Regime

LABEL_MODES = ("scorer", "oracle")
#: pristine sources: procedural dead-leaves images (default; :mod:`.leaves`) or the bundled photographs
SOURCES = ("leaves", "photos")
#: members that label the training GTs (mode "scorer") of the ``visible`` regime (each regime names its own:
#: ``Regime.label_members``); docs/experiments/control.md says why
LABEL_MEMBERS = ("blur_effect", "blockiness")
#: no-reference members only evaluated (never used for labels): the over-optimisation check
HELD_OUT_MEMBERS = ("piqe",)
#: every offline member whose agreement with the GT grade is measured and reported
TRACKED_MEMBERS = ("blur_effect", "blockiness", "piqe", "entropy", "uiqm", "uciqe")
INJECT_AT = "encoder"
#: training GTs on which each member's agreement with the grade is measured (entropy costs ~7 ms each)
TRACKING_SAMPLE = 512


def check_sizes(cfg, counts: tuple[str, ...]) -> None:
    """The sizes every small-restorer bench shares: the ``counts`` fields >= 1, ``crop`` a multiple of 4 and
    >= 16, ``support`` >= ``crop`` (``ValueError`` naming the field)."""
    for name in counts:
        if int(getattr(cfg, name)) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.crop < 16 or cfg.crop % 4:
        raise ValueError(f"crop must be a multiple of 4 and >= 16, got {cfg.crop}")
    if cfg.support < cfg.crop:
        raise ValueError(f"support must be >= crop ({cfg.crop}), got {cfg.support}")


@dataclass(frozen=True)
class ControlConfig:
    """Settings of :func:`run_control`; defaults run in about 10 minutes on 2 CPU cores."""

    out: Path = Path("results/control")
    steps: int = 3000
    labels: str = "scorer"
    seed: int = 0
    #: the LQ input degraded from the GT (Eq. 16, default) or from the pristine crop (ablation: the grade hidden)
    lq_from: str = "gt"
    #: pristine sources: ``"leaves"`` (dead-leaves images, :mod:`.leaves`) or ``"photos"`` (the bundled images
    #: under ``data``, default: the bundled sample images, :mod:`iqprior.sample_images`)
    source: str = "leaves"
    #: the GT imperfection and the LQ degradation: a name of :data:`.data.REGIMES` or a :class:`.data.Regime`
    regime: str | Regime = "dominant"
    pool: int = 1536
    crop: int = 64
    #: side of the item each training GT is cropped from, the image the labels score
    support: int = 128
    batch: int = 8
    lr: float = 2e-3
    width: int = 16
    eval_draws: int = 4
    threads: Optional[int] = None
    progress: bool = True
    data: Optional[Path] = None

    def __post_init__(self):
        if self.labels not in LABEL_MODES:
            raise ValueError(f"labels must be one of {LABEL_MODES}, got {self.labels!r}")
        if isinstance(self.regime, str) and self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {tuple(REGIMES)}, got {self.regime!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.lq_from not in LQ_FROM:
            raise ValueError(f"lq_from must be one of {LQ_FROM}, got {self.lq_from!r}")
        check_sizes(self, ("steps", "pool", "batch", "width", "eval_draws"))

    @property
    def degradation(self) -> Regime:
        """The :class:`.data.Regime` in force."""
        return REGIMES[self.regime] if isinstance(self.regime, str) else self.regime
