"""``iqprior finetune --model codeformer+ --checkpoint codeformer.pth --data GT_DIR --scores scores.jsonl --out DIR``.

Fine-tunes a "+" adapter's level embedding (and with ``--train-base`` the
model's own trainable parts) with the model's own losses; see
:mod:`iqprior.training.finetune`. Under ``torchrun --nproc_per_node N`` it
runs data-parallel.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a '+' adapter on score-labelled images",
        description="Fine-tune a '+' adapter (its level embedding; --train-base also the model) on HQ images with "
                    "quality scores. Without --lq, LQ inputs are made on the fly by the paper's degradation "
                    "(Eq. 16); with --lq, LQ/GT pairs are matched by name. Resumable (--resume).")
    p.add_argument("--model", required=True, help="adapter name, e.g. codeformer+")
    p.add_argument("--checkpoint", default=None, help="the base model's official file, 'official', or a saved dir")
    p.add_argument("--data", required=True, help="GT (HQ) image folder")
    p.add_argument("--scores", default=None, help="JSONL manifest from `iqprior score` for the GT images")
    p.add_argument("--default-level", type=int, default=None,
                   help="level for GT images without a score record (default: they are an error)")
    p.add_argument("--lq", default=None, help="folder of fixed LQ inputs paired with --data by name")
    p.add_argument("--train-base", action="store_true", help="also train the model (not only the embedding)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=4, help="per process")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--size", type=int, default=None, help="training crop size (default: the model's)")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="adapter option (VALUE parsed as JSON when possible), e.g. "
                        "vqgan_checkpoint=vqgan_code1024.pth or fidelity=0.7; repeatable")
    p.add_argument("--out", required=True, help="output folder (checkpoints/, log.csv, final/)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available; torchrun: per rank)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--debug", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..argument_checks import check_checkpoint, check_out, check_positive, parse_options
    from ..distributed import resolve_device
    from ..training.finetune import FinetuneConfig, finetune

    # every argument is checked before any model is built or any file written
    check_positive(args.steps, "--steps", minimum=0)
    check_positive(args.batch_size, "--batch-size")
    check_positive(args.save_every, "--save-every", minimum=0)
    check_positive(args.log_every, "--log-every", minimum=0)
    check_positive(args.num_workers, "--num-workers", minimum=0)
    if args.size is not None:
        check_positive(args.size, "--size", minimum=8)
    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.default_level is not None:
        from iqprior.levels import check_level

        check_level(args.default_level, "--default-level")
    for flag, folder in (("--data", args.data), ("--lq", args.lq)):
        if folder is not None and not Path(folder).exists():
            raise FileNotFoundError(f"{flag} {folder}: no such folder")
    if args.scores is not None and not Path(args.scores).is_file():
        raise FileNotFoundError(f"--scores {args.scores}: no such manifest (write one with `iqprior score`)")
    check_out(args.out, "--out")
    check_checkpoint(args.checkpoint)
    resolve_device(args.device)

    cfg = FinetuneConfig(model=args.model, data=args.data, out=args.out, checkpoint=args.checkpoint,
                         scores=args.scores, lq=args.lq, train_base=args.train_base, steps=args.steps,
                         batch_size=args.batch_size, lr=args.lr, size=args.size, save_every=args.save_every,
                         log_every=args.log_every, num_workers=args.num_workers, seed=args.seed,
                         device=args.device, resume=args.resume, default_level=args.default_level,
                         grad_clip=args.grad_clip, options=parse_options(args.option),
                         progress=not args.no_progress)
    if args.checkpoint is None:
        print(f"note: no --checkpoint: {args.model} starts from random weights", file=sys.stderr)
    final = finetune(cfg)
    print(f"fine-tuned {args.model} for {cfg.steps} steps -> {final}", file=sys.stderr)
    return 0
