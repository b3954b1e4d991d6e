"""``iqprior bench``: the paper's evaluation (quality tables, figures), speed, over-optimisation.

Sub-commands:

- ``quality``: restore a folder with every model, score with the paper's metrics, write the tables;
- ``table``: several ``quality`` runs (one per dataset) in one table, as the paper's Table 1;
- ``speed``: forward latency, images/s and peak memory per model, base vs "+" ratio;
- ``overopt``: gains on the optimised IQA members vs held-out members (over-optimisation monitor);
- ``grid``, ``sweep``, ``histogram``: the paper's Fig. 4, Fig. 13 and Fig. 2;
- ``control``: the paper's thesis measured on CPU (baseline vs its "+" twin, output quality vs level);
- ``real``: the same on a released restorer (Real-ESRGAN) fine-tuned on real photos (:mod:`.bench_real`).

How to run them on the public test sets: docs/guides/evaluating.md (the docs site: `make docs`).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..argument_checks import add_precision_flag


def _common_models(p: argparse.ArgumentParser, models: bool = True) -> None:
    if models:
        p.add_argument("--models", required=True,
                       help="comma-separated adapter names, e.g. codeformer,codeformer+,daefr,daefr+ "
                            "(see `python -c 'import adapters; print(adapters.list_adapters())'`)")
    p.add_argument("--checkpoints", default="",
                   help="NAME=PATH,... : the official file or a save_pretrained directory per model; "
                        "models not listed use their official file (`iqprior weights`)")
    p.add_argument("--random-init", action="store_true",
                   help="models without --checkpoints entry get random weights instead (smoke tests only)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--score", type=int, default=None,
                   help="condition level of '+' models (default: the top level, 9, as the paper)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _speed_flags(p: argparse.ArgumentParser, compile_flag: bool = False) -> None:
    """``--precision`` and ``--exact`` (and ``--compile``): the run-time settings every adapter takes."""
    add_precision_flag(p, "the models")
    p.add_argument("--exact", action="store_true",
                   help="run the models' exact (upstream-identical) path instead of their fast path")
    if compile_flag:
        p.add_argument("--compile", action="store_true",
                       help="torch.compile the models (slow first call; pays off over many calls)")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="benchmarks: quality tables, speed, over-optimisation, figures",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK")

    q = bsub.add_parser("quality", help="restore + score + paper-style tables (Markdown, CSV)")
    _common_models(q)
    q.add_argument("--data", required=True, help="folder of input (LQ) images")
    q.add_argument("--gt", default=None, help="folder of ground-truth images (same relative names): PSNR/SSIM/LPIPS")
    q.add_argument("--metrics", default="paper",
                   help="presets paper|underwater|offline|fr and/or metric names, comma-separated (default paper)")
    q.add_argument("--out", default="results/bench", help="output folder (outputs cached under OUT/<model>/)")
    q.add_argument("--no-input-row", action="store_true", help="do not score the inputs")
    q.add_argument("--overwrite", action="store_true", help="redo cached outputs made with other settings")
    q.add_argument("--title", default="", help="table title")
    _speed_flags(q)
    q.set_defaults(run=run_quality)

    t = bsub.add_parser("table", help="one table over several quality runs, a Datasets column (paper Table 1)")
    t.add_argument("--runs", required=True, help="--out folders of `bench quality` runs, comma-separated")
    t.add_argument("--names", default="", help="dataset names for the runs (default: their --data folder names)")
    t.add_argument("--title", default="")
    t.add_argument("--out", default="results/table", help="output folder: table.md, table.csv")
    t.add_argument("--debug", action="store_true")
    t.set_defaults(run=run_table)

    s = bsub.add_parser("speed", help="latency, images/s, peak memory per model; base vs '+' ratio",
                       description="Random weights unless --checkpoints names a file (timing does not depend "
                                   "on the weights); --random-init is implied.")
    _common_models(s)
    s.add_argument("--sizes", default="512", help="square input sizes, comma-separated (default 512)")
    s.add_argument("--batch-sizes", default="1,4,8", help="batch sizes, comma-separated (default 1,4,8)")
    s.add_argument("--amp", action="store_true", help="legacy: --precision fp16 on cuda, bf16 on cpu")
    _speed_flags(s, compile_flag=True)
    s.add_argument("--no-compare-exact", action="store_true",
                   help="do not time an exact float32 copy of each model side by side (half the time)")
    s.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    s.add_argument("--iters", type=int, default=3, help="timed calls per setting (default 3)")
    s.add_argument("--out", default="results/speed", help="output folder: speed.json, speed.md")
    s.set_defaults(run=run_speed, random_init=True)

    o = bsub.add_parser("overopt", help="over-optimisation monitor: optimised vs held-out IQA gains")
    _common_models(o, models=False)
    o.add_argument("--model", required=True, help="the model trained with a quality loss, e.g. iqpfr or daefr+")
    o.add_argument("--reference", default="input",
                   help="what it is compared with: 'input' (the LQ images) or a model name (its base)")
    o.add_argument("--data", required=True, help="folder of input images")
    o.add_argument("--optimised", required=True, help="IQA members the quality loss used, comma-separated")
    o.add_argument("--held-out", required=True, help="IQA members NOT used in training, comma-separated")
    o.add_argument("--threshold", type=float, default=0.05,
                   help="flag divergence when optimised gain - held-out gain exceeds this (fraction of range)")
    o.add_argument("--out", default="results/overopt", help="output folder: overopt.json, overopt.md")
    o.add_argument("--fail-on-divergence", action="store_true", help="exit code 3 when divergence is flagged")
    o.set_defaults(run=run_overopt)

    g = bsub.add_parser("grid", help="comparison grid input | models | GT (paper Fig. 4) from a quality run")
    g.add_argument("--results", required=True, help="the --out folder of `iqprior bench quality`")
    g.add_argument("--models", required=True, help="columns, comma-separated (cached outputs must exist)")
    g.add_argument("--data", required=True, help="folder of input images")
    g.add_argument("--gt", default=None, help="folder of ground-truth images (last column)")
    g.add_argument("--images", default="", help="relative names of the rows, comma-separated (default: first 3)")
    g.add_argument("--size", type=int, default=256, help="cell size in pixels (default 256)")
    g.add_argument("--out", default="results/figures/grid.png", help="output image")
    g.add_argument("--debug", action="store_true")
    g.set_defaults(run=run_grid)

    w = bsub.add_parser("sweep", help="outputs at condition levels 0..9 of '+' models (paper Fig. 13)")
    w.add_argument("--models", required=True, help="'+' models, comma-separated")
    w.add_argument("--checkpoints", default="")
    w.add_argument("--random-init", action="store_true")
    w.add_argument("--image", required=True, help="one input image")
    w.add_argument("--levels", default="0-9", help="levels, e.g. 0-9, 0..9 or 0,3,6,9 (default 0-9)")
    w.add_argument("--device", default=None)
    w.add_argument("--out", default="results/figures", help="output folder: sweep_<model>.png")
    w.add_argument("--debug", action="store_true")
    w.set_defaults(run=run_sweep)

    h = bsub.add_parser("histogram", help="histogram of a dataset's quality scores (paper Fig. 2)")
    h.add_argument("--manifest", required=True, help="scores written by `iqprior score --out FILE`")
    h.add_argument("--threshold", type=float, default=0.9, help="HQ+ threshold line (default 0.9)")
    h.add_argument("--title", default=None)
    h.add_argument("--out", default="results/figures/histogram.png", help="output image")
    h.add_argument("--debug", action="store_true")
    h.set_defaults(run=run_histogram)

    c = bsub.add_parser("control", help="does conditioning work? baseline vs '+' twin trained on uneven GTs (CPU)",
                        description="Train one small restorer twice on GTs of mixed quality (plain, and its '+' "
                                    "twin conditioned on the GT's level), then score the '+' output at levels "
                                    "0..9 and the baseline against the pristine held-out images (dead-leaves images by "
                                    "default, the bundled photographs with --source photos). See "
                                    "docs/experiments/control.md.")
    c.add_argument("--out", default="results/control", help="output folder: control.json, control.md, control.png")
    c.add_argument("--steps", type=int, default=None, help="training steps per model (default 3000)")
    c.add_argument("--labels", choices=("scorer", "oracle"), default="scorer",
                   help="GT levels from the library's scorer (default) or the known imperfection grade")
    c.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and order (default 0)")
    c.add_argument("--lq-from", choices=("gt", "pristine"), default="gt",
                   help="degrade the LQ input from the imperfect GT (Eq. 16, default) or from the pristine crop "
                        "(ablation: the LQ hides the GT's grade, the paper's premise in its pure form)")
    c.add_argument("--source", choices=("leaves", "photos"), default="leaves",
                   help="pristine images: procedural dead-leaves images (default: content whose detail a small "
                        "restorer can predict) or the bundled photographs (ablation)")
    c.add_argument("--regime", choices=("dominant", "photo", "visible"), default="dominant",
                   help="GT imperfection vs LQ degradation: 'dominant' (default, the paper's regime: the degradation "
                        "dominates a subtle GT blur), 'photo' (the same idea as tuned on the photographs before) or 'visible' "
                        "(ablation: a GT blur that shows through the LQ)")
    c.add_argument("--pool", type=int, default=None, help="training pairs (default 1536)")
    c.add_argument("--eval-draws", type=int, default=None, help="LQ draws per held-out image (default 4)")
    c.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.add_argument("--debug", action="store_true")
    c.set_defaults(run=run_control)

    from .bench_real import add_real_parser

    add_real_parser(bsub)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])
    return p


def _setup(args) -> None:
    """Check the arguments every benchmark shares, before any model is built or file written."""
    from iqprior.bench.runner import parse_checkpoints

    from ..argument_checks import check_checkpoint, check_out

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    if hasattr(args, "device"):
        from iqprior.distributed import resolve_device

        args.device = str(resolve_device(args.device))
    if hasattr(args, "score"):
        from iqprior.levels import DEFAULT_LEVEL, check_level

        args.score = DEFAULT_LEVEL if args.score is None else check_level(args.score, "--score")
    for name, ckpt in parse_checkpoints(getattr(args, "checkpoints", "")).items():
        check_checkpoint(ckpt, f"--checkpoints {name}=")
    if hasattr(args, "models"):
        import adapters
        from iqprior.bench.runner import parse_list

        for name in parse_list(args.models):
            adapters.spec(name)  # unknown names fail now, with a "did you mean"
    if getattr(args, "out", None):
        check_out(args.out, "--out")


def run_quality(args) -> int:
    _setup(args)
    from iqprior.bench.quality import QualityConfig
    from iqprior.bench.quality import run_quality as _run
    from iqprior.bench.runner import parse_checkpoints, parse_list

    cfg = QualityConfig(models=tuple(parse_list(args.models)), data=Path(args.data), out=Path(args.out),
                        gt=Path(args.gt) if args.gt else None, metrics=args.metrics,
                        checkpoints=parse_checkpoints(args.checkpoints), random_init=args.random_init,
                        device=args.device, score=args.score, include_input=not args.no_input_row,
                        overwrite=args.overwrite, progress=not args.no_progress, title=args.title,
                        precision=args.precision, exact=args.exact)
    res = _run(cfg)
    print(res.files["markdown"].read_text())
    print(f"tables: {res.files['markdown']}  {res.files['csv']}")
    failed = {n: r.model_error for n, r in res.restore.items() if r.model_error}
    if failed:
        raise ValueError(f"{len(failed)} of {len(res.restore)} models not run ("
                         + "; ".join(f"{n}: {why}" for n, why in failed.items())
                         + "); give --checkpoints NAME=PATH or fetch the files (`iqprior weights download`)")
    return 0


def run_table(args) -> int:
    from ..argument_checks import check_out

    check_out(args.out, "--out")
    from iqprior.bench.quality import combine_runs
    from iqprior.bench.runner import parse_list

    files = combine_runs([Path(r) for r in parse_list(args.runs)], Path(args.out), parse_list(args.names),
                         args.title)
    print(files["markdown"].read_text())
    return 0


def _positive_ints(text: str, flag: str) -> tuple[int, ...]:
    from iqprior.bench.runner import parse_list

    try:
        values = tuple(int(v) for v in parse_list(text))
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{flag} expects comma-separated positive integers, got {text!r}")
    return values


def run_speed(args) -> int:
    _setup(args)
    from iqprior.bench.runner import parse_checkpoints, parse_list
    from iqprior.bench.speed import SpeedConfig
    from iqprior.bench.speed import run_speed as _run

    cfg = SpeedConfig(models=tuple(parse_list(args.models)),
                      sizes=_positive_ints(args.sizes, "--sizes"),
                      batch_sizes=_positive_ints(args.batch_sizes, "--batch-sizes"),
                      device=args.device, amp=args.amp, warmup=args.warmup, iters=args.iters,
                      checkpoints=parse_checkpoints(args.checkpoints), score=args.score, out=Path(args.out),
                      precision=args.precision, exact=args.exact, compare_exact=not args.no_compare_exact,
                      compile=args.compile)
    res = _run(cfg)
    print(res.files["markdown"].read_text())
    return 0


def run_overopt(args) -> int:
    _setup(args)
    from iqprior.bench.overopt import OverOptConfig
    from iqprior.bench.overopt import run_overopt as _run
    from iqprior.bench.runner import parse_checkpoints, parse_list

    cfg = OverOptConfig(model=args.model, reference=args.reference, data=Path(args.data), out=Path(args.out),
                        optimised=tuple(parse_list(args.optimised)), held_out=tuple(parse_list(args.held_out)),
                        threshold=args.threshold, checkpoints=parse_checkpoints(args.checkpoints),
                        random_init=args.random_init, device=args.device, score=args.score,
                        progress=not args.no_progress)
    report, files = _run(cfg)
    print(files["markdown"].read_text())
    return 3 if (args.fail_on_divergence and report.diverged) else 0


def run_grid(args) -> int:
    from iqprior.bench.figures import comparison_grid
    from iqprior.bench.runner import parse_list

    path = comparison_grid(Path(args.results), parse_list(args.models), Path(args.data),
                           Path(args.gt) if args.gt else None, parse_list(args.images), Path(args.out), args.size)
    print(f"wrote {path}")
    return 0


def run_sweep(args) -> int:
    from iqprior.bench.figures import level_sweeps, parse_levels
    from iqprior.bench.runner import parse_checkpoints, parse_list

    levels = parse_levels(args.levels)
    _setup(args)
    paths = level_sweeps(parse_list(args.models), Path(args.image), Path(args.out), levels,
                         parse_checkpoints(args.checkpoints), args.random_init, args.device)
    for p in paths:
        print(f"wrote {p}")
    return 0


def run_histogram(args) -> int:
    from iqprior.bench.figures import manifest_histogram

    path = manifest_histogram(Path(args.manifest), Path(args.out), args.threshold, args.title)
    print(f"wrote {path}")
    return 0


def run_control(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    from iqprior.bench.control import ControlConfig
    from iqprior.bench.control import run_control as _run

    kwargs = {k: v for k, v in (("steps", args.steps), ("pool", args.pool), ("eval_draws", args.eval_draws))
              if v is not None}
    cfg = ControlConfig(out=Path(args.out), labels=args.labels, seed=args.seed, lq_from=args.lq_from,
                        source=args.source, regime=args.regime, threads=args.threads,
                        progress=not args.no_progress, **kwargs)
    res = _run(cfg)
    print(Path(res["files"]["markdown"]).read_text())
    print(f"wrote {res['files']['json']}  {res['files']['markdown']}  {res['files']['figure']}")
    return 0
