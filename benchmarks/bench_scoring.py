"""Scoring throughput and conditioning overhead, measured side by side in one process.

1. ``iqprior score`` on a folder (``score_directory``: decode once for all
   members in worker processes overlapping the scoring, batches by size,
   channels-last CNN members) vs a naive loop calling each pyiqa metric on
   each file path (pyiqa decodes the file per metric); interleaved repeats.
2. ``condition()`` overhead: a conv net forward wrapped vs unwrapped.

    python benchmarks/bench_scoring.py [--images 8] [--members piqe,entropy] [--repeats 5] [--workers N]
                                       [--precision fp32,bf16]

Members default to the weight-free ones so it runs anywhere; pass learned
members (e.g. ``topiq_nr-face-v1,musiq``) where their weights are on disk, or
``--random-weights`` to time the learned networks with random weights.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _naive_metrics(scorer, random_weights):
    """One pyiqa ``InferenceModel`` per member, as a user would create it (random weights: same arch)."""
    import pyiqa

    metrics = {}
    for m in scorer.members:
        spec = m.spec
        if spec.pyiqa_name is None:
            metrics[spec.name] = None   # a metric pyiqa lacks (ours): the loop decodes and calls it
            continue
        kwargs = dict(spec.create_kwargs)
        if random_weights and any(w.load for w in spec.weights):
            kwargs["pretrained"] = False
        metrics[spec.name] = pyiqa.create_metric(spec.pyiqa_name, device="cpu", **kwargs)
    return metrics


def _raw_scores(manifest: Path) -> dict[str, dict[str, float]]:
    """``{path: {member: raw}}`` of a manifest written by ``score_directory``."""
    from iqprior.scoring.manifest import latest_by_path, read_manifest
    return {p: r["raw"] for p, r in latest_by_path(read_manifest(manifest)).items() if r.get("raw")}


def bench_scorer(paths, members, repeats, random_weights, batch_size=None, workers=None, precisions=("fp32",)):
    """``iqprior score`` (score_directory) vs a naive loop calling each pyiqa metric on each file path.

    Each precision in ``precisions`` is timed in the same interleaved rounds; for a reduced precision the
    printout gives how far its raw scores move from the fp32 ones (max abs per member, relative to the
    member's score range).
    """
    import shutil
    import tempfile

    from iqprior.bench.profiling import interleaved, ratio_stats
    from iqprior.io import read_image
    from iqprior.scoring import create_scorer
    from iqprior.scoring.job import default_workers, score_directory

    scorer = create_scorer(members, device="cpu", pretrained=not random_weights, batch_size=batch_size)
    naive = _naive_metrics(scorer, random_weights)
    tmp = Path(tempfile.mkdtemp(prefix="bench_scoring_"))
    folder = tmp / "images"
    folder.mkdir()
    for i, p in enumerate(paths):
        shutil.copy(p, folder / f"{i:04d}{p.suffix}")
    files = sorted(folder.iterdir())
    runs = iter(range(10**6))
    last: dict[str, Path] = {}

    def ours(precision):
        def run():
            scorer.precision = precision
            last[precision] = tmp / f"run{next(runs)}.jsonl"
            score_directory(folder, scorer, last[precision], progress=False, workers=workers)
        return run

    def loop():
        with torch.no_grad():
            for p in files:
                for name, metric in naive.items():
                    if metric is None:
                        next(m for m in scorer.members if m.spec.name == name)(read_image(p)[None])
                    else:
                        metric(str(p))

    fns = {f"iqprior score {pr}": ours(pr) for pr in precisions}
    fns["naive loop"] = loop
    times = interleaved(fns, repeats)   # one warm-up call of each, then rounds in alternating order
    print(f"scoring {len(files)} images x {len(scorer.names)} members ({', '.join(scorer.names)}), CPU, "
          f"batch {scorer.batch_size}, {default_workers() if workers is None else workers} decode worker(s), "
          f"{torch.get_num_threads()} threads, {'random' if random_weights else 'released'} weights, "
          f"{repeats} interleaved repeats")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"  {k:22s}: {med:8.3f} s median ({min(ts):.3f}-{max(ts):.3f})  ({len(files) / med:6.2f} img/s)")
    for pr in precisions:
        med, lo, hi = ratio_stats(times["naive loop"], times[f"iqprior score {pr}"])
        print(f"  speed-up {pr:5s}        : {med:8.2f} x naive, median of per-repeat ratios ({lo:.2f}-{hi:.2f})")
    if "fp32" in precisions:
        ref = _raw_scores(last["fp32"])
        for pr in precisions:
            if pr == "fp32":
                continue
            got = _raw_scores(last[pr])
            for m in scorer.members:
                lo, hi = m.spec.score_range
                diff = max(abs(got[p][m.spec.name] - ref[p][m.spec.name]) for p in ref)
                print(f"  {pr} vs fp32, {m.spec.name:18s}: max |raw diff| {diff:.3g} "
                      f"({diff / (hi - lo):.2e} of its range {lo:g}..{hi:g})"
                      + (" [random weights: indicative only]" if random_weights and m.spec.needs_weights else ""))
    scorer.precision = "fp32"
    shutil.rmtree(tmp, ignore_errors=True)


def bench_condition(repeats):
    from iqprior import ScoreEmbedding, condition

    torch.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())]).eval()
    x = torch.randn(4, 64, 128, 128)
    wrapped = condition(net, at="4", embedding=ScoreEmbedding(10, (64, 128, 128))).eval()
    from iqprior.bench.profiling import interleaved, medians

    with torch.no_grad():
        med = medians(interleaved({"net": lambda: net(x), "wrapped": lambda: wrapped(x, score=9)}, repeats))
    t_net, t_wrap = med["net"], med["wrapped"]
    print(f"condition() overhead, 4x conv64 on (4, 64, 128, 128), embedding added at layer 2, median of {repeats}")
    print(f"  unwrapped: {t_net * 1e3:8.1f} ms   wrapped: {t_wrap * 1e3:8.1f} ms   ratio {t_wrap / t_net:.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--members", default="piqe,entropy")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--batch-size", type=int, default=None, help="scorer batch (default: the scorer's, 1 on CPU)")
    ap.add_argument("--workers", type=int, default=None, help="decode workers (default: score_directory's)")
    ap.add_argument("--skip-condition", action="store_true", help="only the scoring comparison")
    ap.add_argument("--precision", default="fp32",
                    help="comma-separated precisions of the learned members to time, e.g. fp32,bf16 (default fp32)")
    args = ap.parse_args(argv)
    from iqprior.io import list_images

    paths = (list_images(ROOT / "examples" / "data" / "faces") * args.images)[: args.images]  # one size: one batch
    precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip())
    bench_scorer(paths, args.members, args.repeats, args.random_weights, args.batch_size, args.workers, precisions)
    if not args.skip_condition:
        bench_condition(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
