"""Data of the control experiment (:mod:`iqprior.bench.control`): uneven-quality GTs and their LQ inputs.

The paper's premise (IQPFR, arXiv 2503.09294, §1 and Fig. 2): the ground truth of
a face-restoration training set (FFHQ) is of mixed quality. Here that is made
explicit and measurable:

- **pristine sources**: dead-leaves images (default, :mod:`.leaves`) or the
  bundled images (:mod:`iqprior.sample_images`, ``source="photos"``), box-downscaled
  (faces 4x, others 2x) so that their pixels are sharp; some whole images are
  held out for evaluation;
- **imperfect GT**: a random 128-px *item* of a training source (the unit that
  is labelled, as IQPFR labels each whole FFHQ image), made imperfect by a random
  *grade* ``k`` in 0..9 (0 = pristine) of the :class:`Regime` in force (default
  ``dominant``: Gaussian blur ``sigma = 2.5 k/9`` px; ``visible``: blur ``5 k/9``,
  noise ``3 k/9`` and JPEG ``95 - 55 k/9`` together); the training GT is a random
  64-px crop of it (as a trainer takes random crops of a labelled image);
- **LQ input**: the paper's Eq. 16 degradation of that GT with the regime's
  ranges in pixels of the crop (``dominant``: blur sigma 1..4.5, down-sampling
  1..2, noise 0..5, JPEG 75..95 — its blur spread larger than the grade's, so
  the LQ mostly hides it). ``lq_from="pristine"`` (the ablation
  ``--lq-from pristine``) degrades the pristine crop instead, so the LQ carries
  no trace of the GT's grade: the paper's premise in its pure form (see
  :mod:`iqprior.bench.control`, "premise").

Every crop is kept, flat ones included: an earlier version skipped crops without
texture (no-reference blur measures cannot see blur on a flat patch), which made the
labels track the grade better (Spearman 0.84 vs 0.55 for ``blur_effect``) but left
the restorer untrained on flat regions, so on whole held-out images every output
fell below the LQ input's PSNR. Scoring the 128-px item instead of the 64-px crop
keeps every crop and still gives the labelling measures enough texture to see
(``blur_effect`` tracks the grade with Spearman 0.71 on 128-px items, 0.61 on 64-px crops).
The pristine sources, the pairs and the regimes come from the shared pipeline
(:mod:`iqprior.uneven_gt`); this module holds the control's configuration of it
(which photographs are held out, how much each folder is downscaled) and its
held-out evaluation set. Everything random comes from one ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from iqprior.uneven_gt import sources as _sources
from iqprior.uneven_gt.pool import DEFAULT_REGIME, GRADES, LQ_FROM, REGIMES, Pool, Regime, imperfect, make_pool
from iqprior.uneven_gt.sources import Source, bundled_data_dir

__all__ = ["GRADES", "LQ_FROM", "REGIMES", "DEFAULT_REGIME", "Regime", "Pool", "Source", "imperfect", "make_pool",
           "load_sources", "bundled_data_dir", "SOURCE_SCALE", "HELD_OUT", "EvalSet", "make_eval"]

#: downscaling of each source folder (the bundled faces are 512-px upsamplings of small faces)
SOURCE_SCALE = {"faces": 4, "whole": 2, "underwater": 2}
#: held out for evaluation (one per folder), relative to the data folder (default: the bundled sample images)
HELD_OUT = ("faces/0500.png", "whole/03.jpg", "underwater/625_img_.png")


def load_sources(data_dir: Optional[Path] = None) -> tuple[list[Source], list[Source]]:
    """``(train, held_out)`` pristine sources from the photographs under ``data_dir`` (default: the bundled
    sample images), downscaled (see the module doc)."""
    root = Path(data_dir) if data_dir is not None else bundled_data_dir()
    train, held = _sources.load_sources(root, SOURCE_SCALE, 2, HELD_OUT)
    if not train or not held:
        raise ValueError(f"{root} must hold the held-out images {HELD_OUT} and at least one other image")
    return train, held


@dataclass
class EvalSet:
    """Held-out evaluation pairs (one image each; sizes differ): LQ by Eq. 16 from the pristine source."""

    names: list[str]
    lq: list[torch.Tensor]        # (1, 3, H, W)
    source: list[torch.Tensor]    # (1, 3, H, W), the pristine reference


def make_eval(held_out: Sequence[Source], draws: int, rng: np.random.Generator,
              regime: Regime = DEFAULT_REGIME) -> EvalSet:
    """``draws`` Eq. 16 degradations of every held-out source (the training LQ's ranges)."""
    from iqprior.data.degradations import degrade

    cfg = regime.lq_config()
    out = EvalSet([], [], [])
    for s in held_out:
        h, w = (d - d % 4 for d in s.image.shape[:2])   # the network halves the size twice
        img = np.ascontiguousarray(s.image[:h, :w])
        ref = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
        for d in range(draws):
            out.names.append(f"{s.name}#{d}")
            out.lq.append(torch.from_numpy(degrade(img, rng, cfg)).permute(2, 0, 1)[None].contiguous())
            out.source.append(ref)
    return out
