"""Scoring throughput and conditioning overhead, measured side by side in one process.

1. Our scorer (decode once, all members on the batch) vs a naive loop calling
   each pyiqa metric on each file path (pyiqa decodes the file per metric).
2. ``condition()`` overhead: a conv net forward wrapped vs unwrapped.

    python benchmarks/bench_scoring.py [--images 8] [--members piqe,entropy] [--repeats 5]

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


def bench_scorer(paths, members, repeats, random_weights, batch_size=None):
    import pyiqa

    from iqprior.io import read_image
    from iqprior.scoring import create_scorer

    scorer = create_scorer(members, device="cpu", pretrained=not random_weights, batch_size=batch_size)
    naive = {m.spec.name: m for m in scorer.members} if random_weights else \
        {n: pyiqa.create_metric(scorer.members[i].spec.pyiqa_name, device="cpu") for i, n in enumerate(scorer.names)}

    def ours():
        x = torch.stack([read_image(p) for p in paths])
        scorer.raw(x)

    def loop():
        for p in paths:
            for metric in naive.values():
                if random_weights:
                    metric(read_image(p)[None])
                else:
                    metric(str(p))

    ours()
    loop()  # warm up both
    t_ours, t_loop = median_time(ours, repeats), median_time(loop, repeats)
    print(f"scoring {len(paths)} images x {len(scorer.names)} members ({', '.join(scorer.names)}), CPU, "
          f"batch {scorer.batch_size}, "
          f"{torch.get_num_threads()} threads, median of {repeats}")
    print(f"  iqprior scorer : {t_ours:8.3f} s  ({len(paths) / t_ours:6.2f} img/s)")
    print(f"  naive loop     : {t_loop:8.3f} s  ({len(paths) / t_loop:6.2f} img/s)")
    print(f"  speed-up       : {t_loop / t_ours:8.2f} x")


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
    args = ap.parse_args(argv)
    from iqprior.io import list_images

    paths = (list_images(ROOT / "examples" / "data" / "faces") * args.images)[: args.images]  # one size: one batch
    bench_scorer(paths, args.members, args.repeats, args.random_weights, args.batch_size)
    bench_condition(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
