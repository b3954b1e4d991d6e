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
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adapters  # noqa: E402
from iqprior.bench.profiling import interleaved, medians  # noqa: E402
from iqprior.scoring.underwater import UCIQE, UIQM  # noqa: E402


def compare(names: dict[str, str], x: torch.Tensor, rounds: int, device: torch.device) -> dict[str, float]:
    """Median seconds per forward of each model (``{role: adapter name}``), rounds interleaved (A B B A ...).

    Built by ``adapters.create`` (the spec's fast path, as ``iqprior bench speed`` runs them).
    """
    models = {role: adapters.create(name).to(device) for role, name in names.items()}
    with torch.no_grad():
        return medians(interleaved({role: lambda m=m: m(x, score=9) for role, m in models.items()}, rounds, device))


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
    for family in ("puienet", "nu2net"):
        t = compare({"base": family, "plus": f"{family}+"}, x, args.rounds, device)
        report[family] = {"base_s": round(t["base"], 4), "plus_s": round(t["plus"], 4),
                          "plus_over_base": round(t["plus"] / t["base"], 3)}
    img = torch.rand(1, 3, *args.metric_size, device=device)
    mp = img.shape[-1] * img.shape[-2] / 1e6
    for name, metric in (("uiqm", UIQM()), ("uciqe", UCIQE())):
        metric(img)  # warm-up
        t = medians(interleaved({name: lambda m=metric: m(img)}, args.rounds, device, warmup=0))[name]
        report[name] = {"s_per_megapixel": round(t / mp, 4)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
