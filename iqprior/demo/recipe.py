"""The recipe of the demo's bundled model: ``python -m iqprior.demo.recipe --out DIR`` (a few CPU minutes).

It trains a "minires+" (:mod:`adapters.minires`) from scratch on the bundled
sample images (:mod:`iqprior.sample_images`, package data) the way IQPFR (arXiv
2503.09294, §3, Fig. 2) trains a "+" model, at toy scale. It is one configuration
of the pipeline :mod:`iqprior.uneven_gt` (``iqprior bench control`` is another):

1. **uneven ground truth**: random ``support``-px items of the images (box-
   downscaled 2x so their pixels are sharp), each made imperfect by a random
   grade ``k`` in 0..9 (Gaussian blur ``sigma = 9 k/9`` px and JPEG quality
   ``95 -> 30``, together; ``--gt-noise`` adds noise); the GT is a random
   ``crop``-px crop of its item;
2. **LQ input**: the paper's Eq. 16 degradation (:mod:`iqprior.data.degradations`,
   its spatial ranges scaled to the crop) of the same crop of the *pristine*
   image, so the LQ does not reveal the GT's grade and only the level can;
3. **labels**: the library's scorer on each item — ``iqprior.create_scorer``
   with the no-download members ``blur_effect`` and ``blockiness`` and
   ``iqprior.Calibration.fit`` over the items (the paper's min-max) — then the
   level by the rank of that score, a tenth of the items per level (the one
   departure from the paper's ``floor(10 s)``: see :mod:`iqprior.uneven_gt.labels`);
4. **training**: L1 to the GT at the GT's level, every parameter (network and
   level embedding) from a fixed seed, Adam with a cosine schedule.

Writes ``DIR/config.json`` + ``DIR/model.safetensors`` (``save_pretrained``, so
``iqprior restore --model minires+ --checkpoint DIR`` runs it) and
``DIR/recipe.json`` (settings, label agreement, loss, time). Everything random
comes from ``--seed``; a re-run with the same seed and thread count gives the
same weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from iqprior.uneven_gt import GRADES, Regime

MODEL = "minires+"
LABEL_MEMBERS = ("blur_effect", "blockiness")
GT_JPEG_BEST = 95
RECIPE_NAME = "recipe.json"


@dataclass(frozen=True)
class Recipe:
    """Settings of :func:`train`; the defaults made the bundled model (about 2 CPU minutes on one core)."""

    steps: int = 700
    batch: int = 16
    pool: int = 1024
    crop: int = 64
    support: int = 96
    lr: float = 2e-3
    width: int = 16
    blocks: int = 2
    downscale: int = 2
    seed: int = 0
    #: the worst GT (grade 9): Gaussian blur sigma (px), noise sigma (0..255) and JPEG quality
    gt_blur: float = 9.0
    gt_noise: float = 0.0
    gt_jpeg: int = 30

    def __post_init__(self):
        for name in ("steps", "batch", "pool", "width", "blocks", "downscale"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop < 16 or self.crop % 2:
            raise ValueError(f"crop must be an even number >= 16, got {self.crop}")
        if self.gt_blur <= 0 or self.gt_noise < 0 or not 1 <= self.gt_jpeg <= GT_JPEG_BEST:
            raise ValueError(f"gt_blur must be > 0, gt_noise >= 0 and gt_jpeg in 1..{GT_JPEG_BEST}")
        if self.support < self.crop:
            raise ValueError(f"support must be >= crop ({self.crop}), got {self.support}")

    @property
    def regime(self) -> Regime:
        """The GT imperfection (grade 9: blur ``gt_blur``, noise ``gt_noise``, JPEG 95 -> ``gt_jpeg``) and the
        LQ degradation: the paper's Eq. 16 with its spatial ranges scaled to the crop from 512 px."""
        return Regime.eq16_scaled(self.crop, gt_blur=self.gt_blur, gt_noise=self.gt_noise,
                                  gt_jpeg=(GT_JPEG_BEST, self.gt_jpeg), label_members=LABEL_MEMBERS)


def train(out: Path, recipe: Recipe = Recipe(), data_dir: Optional[Path] = None, progress: bool = True) -> dict:
    """Train the demo model by ``recipe`` on ``data_dir`` (default: the bundled sample images); save it to ``out``.

    The pipeline's configuration: every image of the folder downscaled ``recipe.downscale`` times, none held
    out; LQ inputs from the pristine crops; float items labelled by rank; the batch plan drawn from the same
    generator after the pool, one flip/rotation per step; L1 (``finetune_losses``) on every parameter.
    """
    import adapters
    import iqprior
    from iqprior.uneven_gt import batch_plan, load_sources, make_pool, score_levels, spearman, train_steps

    t0, c0 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(recipe.seed)
    sources, _ = load_sources(data_dir, default_scale=recipe.downscale)
    images = [s.name for s in sources if min(s.image.shape[:2]) >= recipe.support]
    if not images:
        raise ValueError(f"no image of at least {recipe.support * recipe.downscale} px on a side under "
                         f"{data_dir or 'the bundled sample images'}; give another folder (--data DIR)")
    pool = make_pool(sources, recipe.pool, recipe.crop, rng, support=recipe.support, lq_from="pristine",
                     regime=recipe.regime, item_bits=None)
    level, s, _ = score_levels(pool, LABEL_MEMBERS, "rank")
    label_info = {"members": list(LABEL_MEMBERS), "levels": "rank of the calibrated ensemble score",
                  "floor_10s_counts": torch.bincount(iqprior.score_to_level(s), minlength=GRADES).tolist()}
    rho = spearman(-pool.grade, level)

    torch.manual_seed(recipe.seed)
    model = adapters.create(MODEL, width=recipe.width, blocks=recipe.blocks)
    params = model.prepare_finetune(train_base=True)
    plan = batch_plan(recipe.pool, recipe.steps, recipe.batch, rng, per_step=True)
    losses = train_steps(params, lambda x, y, lv: model.finetune_losses(x, y, lv)["l1"], pool, level, plan,
                         recipe.lr, desc="train minires+", progress=progress)
    model.eval()
    model.save_pretrained(out)
    report = {"model": MODEL, "recipe": asdict(recipe), "images": images, "n_images": len(images),
              "labels": {**label_info, "spearman_quality_vs_level": round(rho, 4),
                         "level_counts": torch.bincount(level, minlength=GRADES).tolist()},
              "final_l1": round(float(np.mean(losses[-100:])), 5), "seconds": round(time.perf_counter() - t0, 1),
              "cpu_seconds": round(time.process_time() - c0, 1),
              "threads": torch.get_num_threads(),
              "command": f"python -m iqprior.demo.recipe --out {out}"}
    from iqprior.io import atomic_write_bytes

    atomic_write_bytes(Path(out) / RECIPE_NAME, json.dumps(report, indent=2).encode())
    return report


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iqprior.demo.recipe",
                                description="Train the demo's bundled minires+ on the bundled images.")
    p.add_argument("--out", required=True, help="output folder (config.json, model.safetensors, recipe.json)")
    p.add_argument("--data", default=None, help="image folder (default: the bundled sample images, iqprior/sample_images)")
    defaults = Recipe()
    for name in ("steps", "batch", "pool", "crop", "support", "width", "blocks", "seed"):
        p.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--gt-blur", type=float, default=defaults.gt_blur, help="blur sigma of the worst GT (px)")
    p.add_argument("--gt-noise", type=float, default=defaults.gt_noise, help="noise sigma of the worst GT (0..255)")
    p.add_argument("--gt-jpeg", type=int, default=defaults.gt_jpeg, help="JPEG quality of the worst GT")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: reproducible)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        recipe = Recipe(**{k: getattr(args, k) for k in ("steps", "batch", "pool", "crop", "support", "width",
                                                           "blocks", "seed", "lr", "gt_blur", "gt_noise",
                                                           "gt_jpeg")})
        report = train(Path(args.out), recipe, args.data)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"iqprior.demo.recipe: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("n_images", "labels", "final_l1", "seconds", "cpu_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
