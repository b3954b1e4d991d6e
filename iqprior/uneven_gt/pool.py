"""Training pairs of the pipeline (:mod:`iqprior.uneven_gt`): uneven-quality GTs and their LQ inputs.

A random ``support``-px *item* of a pristine source (the unit that is labelled, as
IQPFR labels each whole FFHQ image) is made imperfect by a random *grade* ``k`` in
0..9 (0 = pristine) of the :class:`Regime` in force; the training GT is a random
``crop``-px crop of it (as a trainer takes random crops of a labelled image); its
LQ input is the paper's Eq. 16 degradation of that GT (``lq_from="gt"``) or of the
same crop of the pristine source (``lq_from="pristine"``: the LQ then carries no
trace of the GT's grade, the paper's premise in its pure form). Everything random
comes from one ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from iqprior.levels import DEFAULT_LEVELS

from .sources import Source

#: imperfection grades 0 (pristine) .. 9 (worst), one per condition level
GRADES = DEFAULT_LEVELS
#: what the LQ input is degraded from: the (imperfect) GT, as Eq. 16 does, or the pristine crop (ablation)
LQ_FROM = ("gt", "pristine")


@dataclass(frozen=True)
class Regime:
    """The GT imperfection per grade and the LQ degradation (Eq. 16 ranges), in pixels of the training crop.

    Grade ``k`` (0 = pristine .. 9): Gaussian blur ``gt_blur * k/9``, noise ``gt_noise * k/9`` (0..255 scale)
    and JPEG quality ``gt_jpeg[0] - (gt_jpeg[0] - gt_jpeg[1]) * k/9`` (``None``: no JPEG), applied together.
    The LQ input: Eq. 16 with ``lq_blur`` (σ), ``lq_down`` (factor r), ``lq_noise`` (δ, 0..255) and
    ``lq_jpeg`` (quality) drawn uniformly, isotropic and anisotropic kernels as in the paper.
    ``label_members``: the no-reference members the ``scorer`` labels use (blockiness only sees JPEG).
    """

    gt_blur: float = 5.0
    gt_noise: float = 3.0
    gt_jpeg: Optional[tuple[int, int]] = (95, 40)
    lq_blur: tuple[float, float] = (0.125, 1.875)
    lq_down: tuple[float, float] = (1.0, 3.75)
    lq_noise: tuple[float, float] = (0.0, 20.0)
    lq_jpeg: tuple[float, float] = (30.0, 90.0)
    #: scorer members that label the GTs (``--labels scorer``): those that see this imperfection
    label_members: tuple[str, ...] = ("blur_effect", "blockiness")

    def lq_config(self):
        """The :class:`iqprior.data.degradations.DegradationConfig` of the LQ input."""
        from iqprior.data.degradations import DegradationConfig

        kernel = 2 * int(np.ceil(3 * self.lq_blur[1])) + 1
        return DegradationConfig(blur_sigma=self.lq_blur, downsample=self.lq_down, noise=self.lq_noise,
                                 jpeg=self.lq_jpeg, kernel_size=max(3, kernel))

    @classmethod
    def eq16_scaled(cls, crop: int, **gt) -> Regime:
        """The paper's Eq. 16 ranges (blur σ 1..15, down-sampling 1..30, noise 0..20, JPEG 30..90, at 512 px)
        with the spatial ones scaled to a ``crop``-px image; ``gt``: the GT fields (``gt_blur``...)."""
        f = crop / 512.0
        return cls(lq_blur=(max(0.1, f), 15.0 * f), lq_down=(1.0, max(1.0, 30.0 * f)), lq_noise=(0.0, 20.0),
                   lq_jpeg=(30.0, 90.0), **gt)


#: ``dominant`` (default, tuned on the dead-leaves sources): a subtle GT blur (σ up to 2.5 px) under an Eq. 16
#: degradation whose own blur (σ 1..4.5 px, down-sampling up to 2x, noise and JPEG) spreads the LQ's blur more than
#: the grade does, as Eq. 16 does on FFHQ (docs/experiments/control.md, "Designing the regime"); ``photo``: the
#: same idea as tuned on the bundled photographs (pilot "C3"); ``visible``: the regime before issue #25 (Eq. 16
#: scaled by 64/512; a GT blur up to 5 px shows through the LQ, so the baseline reads the grade off its input)
REGIMES: dict[str, Regime] = {
    "dominant": Regime(gt_blur=2.5, gt_noise=0.0, gt_jpeg=None, lq_blur=(1.0, 4.5), lq_down=(1.0, 2.0),
                       lq_noise=(0.0, 5.0), lq_jpeg=(75.0, 95.0), label_members=("blur_effect",)),
    "photo": Regime(gt_blur=3.0, gt_noise=0.0, gt_jpeg=None, lq_blur=(2.0, 4.0), lq_down=(1.0, 1.5),
                    lq_noise=(0.0, 10.0), lq_jpeg=(60.0, 95.0), label_members=("blur_effect",)),
    "visible": Regime(),
}
DEFAULT_REGIME = REGIMES["dominant"]


def imperfect(img: np.ndarray, grade: int, rng: np.random.Generator, regime: Regime = DEFAULT_REGIME) -> np.ndarray:
    """``img`` made imperfect by ``grade`` (0 = unchanged .. 9 = worst): blur, noise, JPEG together."""
    from iqprior.data.degradations import DegradationConfig, DegradationParams, apply_degradation

    if grade == 0:
        return img.copy()
    t = grade / (GRADES - 1)
    sigma = max(regime.gt_blur * t, 1e-3)
    cfg = DegradationConfig(blur_sigma=(sigma, sigma), downsample=(1.0, 1.0), noise=(0.0, 255.0),
                            jpeg=(1.0, 100.0), kernel_size=2 * int(np.ceil(3 * max(regime.gt_blur, 0.5))) + 1,
                            aniso_prob=0.0, blur=regime.gt_blur > 0, jpeg_on=regime.gt_jpeg is not None)
    best, worst = regime.gt_jpeg or (100, 100)
    quality = int(round(best - (best - worst) * t))
    params = DegradationParams(sigma, sigma, 0.0, True, 1.0, regime.gt_noise * t, quality)
    return apply_degradation(img, params, rng, cfg)


@dataclass
class Pool:
    """Training pairs: ``gt``/``lq`` ``(N, 3, crop, crop)`` float in [0, 1], ``grade`` ``(N,)`` long 0..9.

    ``item``: ``(N, 3, support, support)``, the imperfect item each ``gt`` was cropped from (the image the
    labels score): uint8 (JPEG is the last imperfection, so 8 bits hold it, grade 0 up to rounding) or, made
    with ``item_bits=None``, float32 as computed.
    """

    gt: torch.Tensor
    lq: torch.Tensor
    grade: torch.Tensor
    pristine: torch.Tensor
    item: torch.Tensor

    def items(self, start: int = 0, stop: Optional[int] = None) -> torch.Tensor:
        """``item[start:stop]`` as float in [0, 1]."""
        part = self.item[start:stop]
        return part if part.is_floating_point() else part.float() / 255.0


def make_pool(sources: Sequence[Source], size: int, crop: int, rng: np.random.Generator,
              progress: bool = False, support: Optional[int] = None, lq_from: str = "gt",
              regime: Regime = DEFAULT_REGIME, item_bits: Optional[int] = 8) -> Pool:
    """``size`` training pairs: random ``support``-px items (default ``2 * crop``), a uniform random grade
    each, made imperfect; the GT a random ``crop``-px crop of the item, its LQ by Eq. 16 of the GT (or, with
    ``lq_from="pristine"``, of the same crop of the pristine source; the random draws are the same either way,
    so both modes give the same GTs). ``item_bits``: 8 stores the items as uint8, ``None`` as float32."""
    from tqdm.auto import tqdm

    from iqprior.data.degradations import degrade

    support = 2 * crop if support is None else int(support)
    if lq_from not in LQ_FROM:
        raise ValueError(f"lq_from must be one of {LQ_FROM}, got {lq_from!r}")
    if support < crop:
        raise ValueError(f"support ({support}) must be at least the crop ({crop})")
    usable = [s for s in sources if min(s.image.shape[:2]) >= support]
    if not usable:
        raise ValueError(f"no training source is at least {support} px on a side")
    cfg = regime.lq_config()
    gts, lqs, grades, pristine, items = [], [], [], [], []
    with tqdm(total=size, desc="training pairs", disable=not progress, unit="pair") as bar:
        while len(gts) < size:
            src = usable[int(rng.integers(len(usable)))].image
            h, w = src.shape[:2]
            y, x = int(rng.integers(h - support + 1)), int(rng.integers(w - support + 1))
            c = src[y:y + support, x:x + support]
            grade = int(rng.integers(GRADES))
            item = imperfect(c, grade, rng, regime)
            y, x = int(rng.integers(support - crop + 1)), int(rng.integers(support - crop + 1))
            gt = np.ascontiguousarray(item[y:y + crop, x:x + crop])
            clean = c[y:y + crop, x:x + crop]
            lq = degrade(gt if lq_from == "gt" else np.ascontiguousarray(clean), rng, cfg)
            gts.append(gt)
            lqs.append(lq)
            grades.append(grade)
            pristine.append(clean)
            items.append(item if item_bits is None else np.round(np.clip(item, 0, 1) * 255).astype(np.uint8))
            bar.update(1)
    to_t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    item_t = to_t(items) if item_bits is not None else to_t(items).float()
    return Pool(to_t(gts), to_t(lqs), torch.tensor(grades), to_t(pristine), item_t)
