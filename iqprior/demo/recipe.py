"""The recipe of the demo's bundled model: ``python -m iqprior.demo.recipe --out DIR`` (a few CPU minutes).

It trains a "minires+" (:mod:`adapters.minires`) from scratch on the bundled
images (``examples/data``) the way IQPFR (arXiv 2503.09294, §3, Fig. 2) trains a
"+" model, at toy scale:

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
   departure from the paper's ``floor(10 s)``: see :func:`label`);
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

MODEL = "minires+"
LABEL_MEMBERS = ("blur_effect", "blockiness")
GRADES = 10
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


def default_data_dir() -> Path:
    """``examples/data`` of this checkout: the bundled images."""
    return Path(__file__).resolve().parents[2] / "examples" / "data"


def load_images(data_dir: Path, downscale: int, support: int) -> list[tuple[str, np.ndarray]]:
    """``(relative path, (H, W, 3) float32 RGB)`` of every image under ``data_dir``, box-downscaled."""
    import cv2

    from iqprior.io import list_images, read_image_array

    paths = list_images(data_dir)
    out = []
    for p in paths:
        a = read_image_array(p)
        h, w = a.shape[:2]
        if downscale > 1:
            a = cv2.resize(a, (w // downscale, h // downscale), interpolation=cv2.INTER_AREA)
        if min(a.shape[:2]) >= support:
            out.append((p.relative_to(data_dir).as_posix(), np.clip(a, 0, 1).astype(np.float32)))
    if not out:
        raise ValueError(f"no image of at least {support * downscale} px on a side under {data_dir}; "
                         f"the recipe trains on the bundled examples/data (or --data DIR)")
    return out


def imperfect(img: np.ndarray, grade: int, rng: np.random.Generator, r: Recipe = Recipe()) -> np.ndarray:
    """``img`` made imperfect by ``grade`` (0 = unchanged .. 9 = worst): blur, noise and JPEG together."""
    from iqprior.data.degradations import DegradationConfig, DegradationParams, apply_degradation

    if grade == 0:
        return img.copy()
    t = grade / (GRADES - 1)
    sigma = r.gt_blur * t
    cfg = DegradationConfig(blur_sigma=(sigma, sigma), downsample=(1.0, 1.0), noise=(0.0, 255.0), jpeg=(1.0, 100.0),
                            kernel_size=2 * int(np.ceil(3 * r.gt_blur)) + 1, aniso_prob=0.0)
    quality = int(round(GT_JPEG_BEST - (GT_JPEG_BEST - r.gt_jpeg) * t))
    return apply_degradation(img, DegradationParams(sigma, sigma, 0.0, True, 1.0, r.gt_noise * t, quality), rng, cfg)


def lq_config(crop: int):
    """Eq. 16 with its spatial ranges (blur sigma, down-sampling) scaled to a ``crop``-px image from 512."""
    from iqprior.data.degradations import DegradationConfig

    f = crop / 512.0
    hi = 15.0 * f
    return DegradationConfig(blur_sigma=(max(0.1, f), hi), downsample=(1.0, max(1.0, 30.0 * f)), noise=(0.0, 20.0),
                             jpeg=(30.0, 90.0), kernel_size=max(3, 2 * int(np.ceil(3 * hi)) + 1))


def make_pool(images: list[tuple[str, np.ndarray]], r: Recipe, rng: np.random.Generator):
    """``(item, gt, lq, grade)``: items ``(N, 3, support, support)``, GT/LQ ``(N, 3, crop, crop)``, grades ``(N,)``."""
    from iqprior.data.degradations import degrade

    cfg = lq_config(r.crop)
    items, gts, lqs, grades = [], [], [], []
    for _ in range(r.pool):
        _, img = images[int(rng.integers(len(images)))]
        h, w = img.shape[:2]
        y, x = int(rng.integers(h - r.support + 1)), int(rng.integers(w - r.support + 1))
        pristine = img[y:y + r.support, x:x + r.support]
        grade = int(rng.integers(GRADES))
        item = imperfect(pristine, grade, rng, r)
        cy, cx = int(rng.integers(r.support - r.crop + 1)), int(rng.integers(r.support - r.crop + 1))
        gts.append(item[cy:cy + r.crop, cx:cx + r.crop])
        lqs.append(degrade(np.ascontiguousarray(pristine[cy:cy + r.crop, cx:cx + r.crop]), rng, cfg))
        items.append(item)
        grades.append(grade)
    t = lambda arrs: torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous().float()
    return t(items), t(gts), t(lqs), torch.tensor(grades)


def label(items: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Levels of the items by the library's scorer, calibrated on them (paper §3.1)."""
    import iqprior

    scorer = iqprior.create_scorer(list(LABEL_MEMBERS), device="cpu")
    parts = [scorer.raw(items[i:i + 256]) for i in range(0, len(items), 256)]
    raw = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    scorer.calibration = iqprior.Calibration.fit(raw)
    s = scorer.combine(raw)
    # Levels by rank of the ensemble score (a tenth of the items each), not floor(10 s): on 1024 items the
    # calibrated mean of two members bunches in levels 3-4 and leaves levels 0-2 and 9 with a few dozen items
    # at most, too few to train their embedding rows (the knob then does not rise monotonically).
    rank = torch.empty(len(s), dtype=torch.long)
    rank[torch.argsort(s, stable=True)] = torch.arange(len(s))
    level = (rank * GRADES) // len(s)
    return level, {"members": list(LABEL_MEMBERS), "levels": "rank of the calibrated ensemble score",
                   "floor_10s_counts": torch.bincount(iqprior.score_to_level(s), minlength=GRADES).tolist()}


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(v: torch.Tensor) -> np.ndarray:
        v = v.double().numpy()
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for u in np.unique(v):  # ties share their mean rank
            m = v == u
            r[m] = r[m].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def train(out: Path, recipe: Recipe = Recipe(), data_dir: Optional[Path] = None, progress: bool = True) -> dict:
    """Train the demo model by ``recipe`` on ``data_dir`` (default: the bundled images) and save it to ``out``."""
    import adapters

    t0, c0 = time.perf_counter(), time.process_time()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    rng = np.random.default_rng(recipe.seed)
    images = load_images(data_dir, recipe.downscale, recipe.support)
    items, gt, lq, grade = make_pool(images, recipe, rng)
    level, label_info = label(items)
    rho = spearman(-grade, level)

    torch.manual_seed(recipe.seed)
    model = adapters.create(MODEL, width=recipe.width, blocks=recipe.blocks)
    params = model.prepare_finetune(train_base=True)
    opt = torch.optim.Adam(params, lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.steps)
    order = np.concatenate([rng.permutation(recipe.pool) for _ in range(recipe.steps * recipe.batch // recipe.pool + 1)])
    flips = rng.integers(0, 8, size=recipe.steps)
    losses = []
    for step in range(recipe.steps):
        idx = torch.from_numpy(order[step * recipe.batch:(step + 1) * recipe.batch])
        x, y = _augment(lq[idx], int(flips[step])), _augment(gt[idx], int(flips[step]))
        loss = model.finetune_losses(x, y, level[idx])["l1"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress and (step + 1) % 100 == 0:
            print(f"step {step + 1}/{recipe.steps}  l1 {np.mean(losses[-100:]):.4f}", file=sys.stderr, flush=True)
    model.eval()
    model.save_pretrained(out)
    report = {"model": MODEL, "recipe": asdict(recipe), "images": [n for n, _ in images], "n_images": len(images),
              "labels": {**label_info, "spearman_quality_vs_level": round(rho, 4),
                         "level_counts": torch.bincount(level, minlength=GRADES).tolist()},
              "final_l1": round(float(np.mean(losses[-100:])), 5), "seconds": round(time.perf_counter() - t0, 1),
              "cpu_seconds": round(time.process_time() - c0, 1),
              "threads": torch.get_num_threads(),
              "command": f"python -m iqprior.demo.recipe --out {out}"}
    from iqprior.io import atomic_write_bytes

    atomic_write_bytes(Path(out) / RECIPE_NAME, json.dumps(report, indent=2).encode())
    return report


def _augment(x: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a square batch."""
    if code & 4:
        x = x.flip(-1)
    return torch.rot90(x, code & 3, dims=(-2, -1))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iqprior.demo.recipe",
                                description="Train the demo's bundled minires+ on the bundled images.")
    p.add_argument("--out", required=True, help="output folder (config.json, model.safetensors, recipe.json)")
    p.add_argument("--data", default=None, help="image folder (default: the bundled examples/data)")
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
