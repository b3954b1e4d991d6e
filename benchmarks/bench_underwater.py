"""Underwater models and metrics: base vs "+" forward time, UIQM / UCIQE time per megapixel.

PUIE-Net (Fu et al., ECCV 2022) and NU2Net (Guo et al., AAAI 2023) against their
"+" variants (IQPFR, arXiv 2503.09294: a per-channel level embedding added at
the bottleneck), timed side by side in one process with interleaved rounds;
UIQM (Panetta et al. 2016) and UCIQE (Yang & Sowmya 2015) as implemented in
:mod:`iqprior.scoring.underwater`.

    python benchmarks/bench_underwater.py                     # 256x256 models, 512x512 metrics, CPU, 1 thread
    python benchmarks/bench_underwater.py --size 480 640 --rounds 5 --device cuda

Random weights (timing does not depend on them). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.nu2net import build_nu2net, build_nu2net_plus
from adapters.puienet import build_puienet, build_puienet_plus
from iqprior.bench.speed import timed
from iqprior.scoring.underwater import UCIQE, UIQM


def compare(builders: dict, x: torch.Tensor, rounds: int, device: torch.device) -> dict[str, float]:
    """Median seconds per forward of each model, rounds interleaved (A, B, A, B, ...)."""
    models = {name: b().to(device).eval() for name, b in builders.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for m in models.values():
            m(x)  # warm-up
        for _ in range(rounds):
            for name, m in models.items():
                times[name].append(timed(lambda m=m: m(x), device))
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"), help="model input size")
    ap.add_argument("--metric-size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = torch.rand(args.batch, 3, *args.size, device=device)
    report: dict = {"device": str(device), "threads": args.threads, "size": list(args.size), "batch": args.batch}
    for family, builders in (("puienet", {"base": build_puienet, "plus": build_puienet_plus}),
                             ("nu2net", {"base": build_nu2net, "plus": build_nu2net_plus})):
        t = compare(builders, x, args.rounds, device)
        report[family] = {"base_s": round(t["base"], 4), "plus_s": round(t["plus"], 4),
                          "plus_over_base": round(t["plus"] / t["base"], 3)}
    img = torch.rand(1, 3, *args.metric_size, device=device)
    mp = img.shape[-1] * img.shape[-2] / 1e6
    for name, metric in (("uiqm", UIQM()), ("uciqe", UCIQE())):
        metric(img)  # warm-up
        t = statistics.median(timed(lambda m=metric: m(img), device) for _ in range(args.rounds))
        report[name] = {"s_per_megapixel": round(t / mp, 4)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
