"""``iqprior bench real``: a released restorer made "+" and fine-tuned on real photos (docs/experiments/real.md)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_real_parser(bsub) -> argparse.ArgumentParser:
    from iqprior.bench.real.config import DEFAULT_CHECKPOINT, HELDOUT_MEMBERS, LABEL_MEMBERS

    r = bsub.add_parser("real", help="a released restorer's '+' vs its twin, fine-tuned on real photos (CPU, "
                                     "<= 20 min)",
                        description="Fine-tune a released restorer's '+' (auto+) and its unconditioned twin with "
                                    "the paper's recipe on real photos (GTs of mixed quality labelled by published "
                                    "NR-IQA members), then score both, the released model and the LQ on held-out "
                                    "photos. Nothing is downloaded: run `iqprior weights download "
                                    f"{DEFAULT_CHECKPOINT}` first. See docs/experiments/real.md.")
    r.add_argument("--out", default="results/real",
                   help="output folder: real.json, real.md, real.png, plus/, baseline/")
    r.add_argument("--checkpoint", default=None,
                   help=f"the released model file (a weights-registry name or a path; default {DEFAULT_CHECKPOINT}); "
                        "any architecture auto+ reads")
    r.add_argument("--inject-at", default=None,
                   help="submodule that gets the level embedding (default: half-way through a Compact body, "
                        "else auto+'s table)")
    r.add_argument("--steps", type=int, default=None, help="fine-tuning steps per model (default 1000)")
    r.add_argument("--pool", type=int, default=None, help="training GTs (default 512)")
    r.add_argument("--crop", type=int, default=None, help="training GT crop in px (default 64)")
    r.add_argument("--seed", type=int, default=0, help="seed of data, order and evaluation (default 0)")
    r.add_argument("--label-members", default=None,
                   help=f"comma-separated members that label the GTs (default {','.join(LABEL_MEMBERS)})")
    r.add_argument("--heldout-members", default=None,
                   help=f"comma-separated members only evaluated (default {','.join(HELDOUT_MEMBERS)})")
    r.add_argument("--loss", choices=("mse", "l1"), default=None,
                   help="fine-tuning loss: mse (default: the conditional mean, best PSNR at level 9) or l1")
    r.add_argument("--level-rule", choices=("rank", "floor"), default=None,
                   help="GT level from the calibrated ensemble score: rank (default: a tenth of the GTs per level) "
                        "or floor (the paper's floor(10 s))")
    r.add_argument("--eval-draws", type=int, default=None, help="LQ draws per held-out photo (default 2)")
    r.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: reproducible)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--debug", action="store_true")
    r.set_defaults(run=run_real)
    return r


def run_real(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    from iqprior.bench.real import RealConfig
    from iqprior.bench.real import run_real as _run

    def members(v):
        return None if v is None else tuple(m.strip() for m in v.split(",") if m.strip())

    given = {"checkpoint": args.checkpoint, "inject_at": args.inject_at, "steps": args.steps, "pool": args.pool,
             "crop": args.crop, "eval_draws": args.eval_draws, "level_rule": args.level_rule,
             "loss": args.loss,
             "label_members": members(args.label_members),
             "heldout_members": members(args.heldout_members)}
    cfg = RealConfig(out=Path(args.out), seed=args.seed, threads=args.threads, progress=not args.no_progress,
                     **{k: v for k, v in given.items() if v is not None})
    res = _run(cfg)
    print(Path(res["files"]["markdown"]).read_text())
    print("wrote " + "  ".join(res["files"].values()))
    return 0
