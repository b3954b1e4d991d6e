"""``iqprior score DIR``: score a folder with the NR-IQA ensemble into a resumable JSONL manifest."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checks import add_precision_flag


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score", help="score every image under a folder with the NR-IQA ensemble",
        description="Score every image under DIR (recursively) with the NR-IQA ensemble. One JSON line per image is "
                    "appended to --out; a re-run skips images already there. Under torchrun the file list is sharded "
                    "by rank and rank 0 merges the parts.")
    p.add_argument("dir", nargs="?", help="folder of images (or one image); not with --import")
    p.add_argument("--import", dest="import_csv", metavar="FILE.csv",
                   help="no scoring: turn a CSV of scores from elsewhere (e.g. the IQPIR authors' "
                        "FFHQ_512_score_80.csv) into the manifest --out + calibration")
    p.add_argument("--column", help="with --import: the score column (e.g. musiq)")
    p.add_argument("--path-column", help="with --import: the image-path column (default: the first)")
    p.add_argument("--members", default="paper",
                   help="preset (paper, offline, underwater) or comma-separated member names (default: paper)")
    p.add_argument("--out", default=None, help="manifest to write/append (JSONL); required unless --list-members")
    p.add_argument("--calibrate", action="store_true",
                   help="fit the dataset min-max calibration over the manifest and write it beside --out")
    p.add_argument("--calibration", help="calibration JSON to apply (or, with --calibrate, where to write it)")
    p.add_argument("--plot", help="write a histogram of the ensemble scores (PNG)")
    p.add_argument("--hq-threshold", type=float, default=0.9, help="HQ+ threshold S_thr (default 0.9)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per member call (default: 8 on CUDA, 1 on CPU, where batching is slower)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes decoding images ahead of the scoring (default: spare cores, at most 4; 0: none)")
    add_precision_flag(p, "the learned members' networks; reduced-precision records are marked")
    p.add_argument("--random-weights", action="store_true",
                   help="build learned members with random weights (pipeline checks only; scores are meaningless)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--list-members", action="store_true", help="list known members and whether they are usable")
    p.add_argument("--trust-remote-code", metavar="COMMIT", default=None,
                   help="let members that run code from the Hugging Face hub (qalign) be built, at this 40-hex "
                        "commit of their repo only; never needed otherwise (see docs/security.md)")
    p.set_defaults(run=run, score_parser=p)


def run(args: argparse.Namespace) -> int:
    if args.dir is None and args.import_csv is None and not args.list_members:  # a usage error (exit 2)
        args.score_parser.error("the following arguments are required: dir (or --import FILE.csv)")
    if not args.trust_remote_code:
        return _run(args)
    from ..scoring.remote_code import trusting_remote_code

    with trusting_remote_code(args.trust_remote_code):  # the explicit, pinned opt-in, for this run only
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..distributed import default_device, init_distributed, resolve_device
    from ..scoring import SPECS, create_scorer, member_available
    from ..scoring.ensemble import preset_members
    from ..scoring.job import score_directory
    from .checks import check_out, check_positive

    if args.import_csv is not None:
        return _import(args)
    if args.list_members:
        for name, spec in SPECS.items():
            if spec.full_reference:  # needs a ground truth: a benchmark metric, not a member
                continue
            ok, why = member_available(name)
            print(f"{name:18s} {'ok ' if ok else '-- '} {'lower' if spec.lower_better else 'higher'} is better, "
                  f"range {spec.score_range}{'' if ok else '  [' + why + ']'}")
        return 0
    # every argument is checked before any model is built or any file written
    if args.out is None:
        raise ValueError("the following arguments are required: --out (the manifest to write, e.g. scores.jsonl)")
    check_out(args.out, "--out", is_file=True)
    check_out(args.plot, "--plot", is_file=True)
    check_positive(args.batch_size, "--batch-size")
    if not 0.0 <= args.hq_threshold <= 1.0:
        raise ValueError(f"--hq-threshold must lie in [0, 1], got {args.hq_threshold}")
    if args.calibration and not args.calibrate and not Path(args.calibration).is_file():
        raise FileNotFoundError(f"--calibration {args.calibration}: no such file (write one with --calibrate)")
    preset_members(args.members)  # unknown member names fail here, in one line
    resolve_device(args.device)
    dist = init_distributed(args.device)
    device = args.device or default_device(dist)
    if dist.enabled and args.device in (None, "cuda"):
        device = default_device(dist)
    scorer = create_scorer(args.members, calibration=None if args.calibrate else args.calibration, device=device,
                           pretrained=not args.random_weights, batch_size=args.batch_size,
                           precision=args.precision)
    if args.random_weights:
        print("note: --random-weights: learned members have random weights; scores are meaningless",
              file=sys.stderr)
    result = score_directory(args.dir, scorer, args.out, calibrate=args.calibrate, calibration=args.calibration,
                             hq_threshold=args.hq_threshold, plot=args.plot, progress=not args.no_progress, dist=dist,
                             workers=args.workers)
    if result.summary is None:  # non-zero rank under torchrun
        return 0
    summary = json.loads(result.summary.read_text())
    print(f"scored {result.scored} new image(s), {result.errors} error(s), {result.skipped} already done "
          f"-> {result.manifest}", file=sys.stderr)
    q = summary.get("quantiles", {})
    if summary.get("count"):
        print(f"{summary['count']} images: mean {summary['mean']:.3f}, median {q['p50']:.3f}, "
              f"HQ+ (> {args.hq_threshold:g}) {summary['hq_plus']}, normalised by {summary['normalised_by']}")
    for ex in summary.get("error_examples", []):
        print(f"  error: {ex['path']}: {ex['error']}", file=sys.stderr)
    for label, path in (("calibration", result.calibration), ("summary", result.summary),
                        ("histogram", result.histogram)):
        if path:
            print(f"{label}: {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    """``--import FILE.csv --column NAME --out M.jsonl [--calibrate] [--calibration C.json]``."""
    import warnings

    from ..scoring.import_csv import format_histogram, import_scores
    from .checks import check_out

    if args.dir is not None:
        raise ValueError("--import reads scores from the CSV: give no image folder")
    if not args.column or args.out is None:
        raise ValueError("--import needs --column NAME (the score column) and --out M.jsonl")
    if not Path(args.import_csv).is_file():
        raise FileNotFoundError(f"--import {args.import_csv}: no such file")
    check_out(args.out, "--out", is_file=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = import_scores(args.import_csv, args.column, args.out, path_column=args.path_column,
                          normalise=args.calibrate, calibration_path=args.calibration)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"imported {r.count} score(s) from {args.import_csv} ({args.column}) -> {r.manifest}", file=sys.stderr)
    print(f"levels, floor(10·s) of the values{' (used)' if not args.calibrate else ''}: "
          f"{format_histogram(r.histogram_raw)}")
    print(f"levels, min-max normalised{' (used)' if args.calibrate else ''}: {format_histogram(r.histogram_minmax)}")
    print(f"calibration: {r.calibration}\nsummary: {r.summary}")
    return 0
