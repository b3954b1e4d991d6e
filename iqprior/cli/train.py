"""``iqprior train``: train one IQPFR stage from a YAML config.

    iqprior train --stage 1 --config iqpfr_stage1 --data ffhq_512 --scores scores.jsonl --out runs/s1
    iqprior train --stage 2 --config iqpfr_stage2 --init runs/s1 --out runs/s2
    iqprior train --stage 3 --config iqpfr_stage3 --init runs/s2 --out runs/s3
    torchrun --nproc_per_node 8 -m iqprior train --stage 2 ...      # DDP, one shard per rank

``--config`` takes a path or a bundled name (tiny, iqpfr_stage1..3, iqpir_stage1..2). Flags
override the file; ``--set section.key=value`` overrides anything else.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train an IQPFR stage (1: dual codebook, 2: code prediction, 3: quality)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", type=int, choices=(1, 2, 3), required=True)
    p.add_argument("--config", default=None, help="YAML file or bundled config name (default: the stage's paper config)")
    p.add_argument("--out", default=None, help="run directory (default: runs/iqpfr_stage<N>)")
    p.add_argument("--init", default=None, help="previous stage's run directory to initialise from")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--data", default=None, help="training images (overrides data.root)")
    p.add_argument("--scores", default=None, help="scores manifest JSONL (overrides data.scores)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="per process")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--vqgan-checkpoint", default=None, help="Stage I: initialise from vqgan_code1024.pth")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="any other override")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from ..distributed import resolve_device
    from ..training.config import load_config
    from ..training.trainer import Trainer
    from .checks import check_out, check_positive

    check_positive(args.steps, "--steps", minimum=0)
    check_positive(args.batch_size, "--batch-size")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    check_out(args.out, "--out")
    if args.init is not None and not Path(args.init).exists():
        raise FileNotFoundError(f"--init {args.init}: no such run directory (the previous stage's --out)")
    flags = {"data.root": args.data, "data.scores": args.scores, "train.steps": args.steps,
             "train.batch_size": args.batch_size, "train.lr": args.lr, "train.device": args.device,
             "train.vqgan_checkpoint": args.vqgan_checkpoint}
    overrides = list(args.set) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    config = load_config(args.config or f"iqpfr_stage{args.stage}", overrides, stage=args.stage)
    resolve_device(config.train.device, "--device" if args.device else "train.device")
    out = args.out or f"runs/iqpfr_stage{args.stage}"
    trainer = Trainer(config, out, init=args.init, resume=args.resume)
    trainer.run()
    if trainer.dist.is_main:
        print(f"stage {args.stage} finished at step {trainer.step}; outputs in {out}")
    return 0
