"""Scoring throughput and conditioning overhead, measured side by side in one process.

1. ``iqprior score`` on a folder (``score_directory``: decode once for all
   members in worker processes overlapping the scoring, batches by size,
   channels-last CNN members) vs a naive loop calling each pyiqa metric on
   each file path (pyiqa decodes the file per metric); interleaved repeats.
2. ``condition()`` overhead: a conv net forward wrapped vs unwrapped.

    python benchmarks/bench_scoring.py [--images 8] [--members piqe,entropy] [--repeats 5] [--workers N]

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


def median_time(fn, repeats: int) -> float:
    from iqprior.bench.speed import timed
    return statistics.median(timed(fn) for _ in range(repeats))


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


def bench_scorer(paths, members, repeats, random_weights, batch_size=None, workers=None):
    """``iqprior score`` (score_directory) vs a naive loop calling each pyiqa metric on each file path."""
    import shutil
    import tempfile

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

    def ours():
        score_directory(folder, scorer, tmp / f"run{next(runs)}.jsonl", progress=False, workers=workers)

    def loop():
        with torch.no_grad():
            for p in files:
                for name, metric in naive.items():
                    if metric is None:
                        next(m for m in scorer.members if m.spec.name == name)(read_image(p)[None])
                    else:
                        metric(str(p))

    ours()
    loop()  # warm up both
    t_ours, t_loop = [], []
    for r in range(repeats):  # interleaved, alternating which goes first
        for fn, acc in ((ours, t_ours), (loop, t_loop))[:: 1 if r % 2 == 0 else -1]:
            from iqprior.bench.speed import timed
            acc.append(timed(fn))
    ratios = sorted(b / a for a, b in zip(t_ours, t_loop))
    med_o, med_l = statistics.median(t_ours), statistics.median(t_loop)
    print(f"scoring {len(files)} images x {len(scorer.names)} members ({', '.join(scorer.names)}), CPU, "
          f"batch {scorer.batch_size}, {default_workers() if workers is None else workers} decode worker(s), "
          f"{torch.get_num_threads()} threads, {'random' if random_weights else 'released'} weights, "
          f"{repeats} interleaved repeats")
    print(f"  iqprior score : {med_o:8.3f} s median ({min(t_ours):.3f}-{max(t_ours):.3f})  "
          f"({len(files) / med_o:6.2f} img/s)")
    print(f"  naive loop    : {med_l:8.3f} s median ({min(t_loop):.3f}-{max(t_loop):.3f})  "
          f"({len(files) / med_l:6.2f} img/s)")
    print(f"  speed-up      : {statistics.median(ratios):8.2f} x median of per-repeat ratios "
          f"({ratios[0]:.2f}-{ratios[-1]:.2f})")
    shutil.rmtree(tmp, ignore_errors=True)


def bench_condition(repeats):
    from iqprior import ScoreEmbedding, condition

    torch.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(4) for m in (nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())]).eval()
    x = torch.randn(4, 64, 128, 128)
    wrapped = condition(net, at="4", embedding=ScoreEmbedding(10, (64, 128, 128))).eval()
    with torch.no_grad():
        net(x)
        wrapped(x, score=9)
        rounds = [(median_time(lambda: net(x), 1), median_time(lambda: wrapped(x, score=9), 1))
                  for _ in range(repeats)]
    t_net = statistics.median(r[0] for r in rounds)
    t_wrap = statistics.median(r[1] for r in rounds)
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
    args = ap.parse_args(argv)
    from iqprior.io import list_images

    paths = (list_images(ROOT / "examples" / "data" / "faces") * args.images)[: args.images]  # one size: one batch
    bench_scorer(paths, args.members, args.repeats, args.random_weights, args.batch_size, args.workers)
    if not args.skip_condition:
        bench_condition(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
