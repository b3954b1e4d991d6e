"""Fast path vs exact path per network, the measures one by one, calls interleaved in one process.

For each network the exact path and each fast-path variant (channels-last
only, SDPA attention only, both) run on the same random-weight copy and the
same input, round-robin with the order reversed every round; the speed-up of a
variant is the median over rounds of ``t_exact / t_variant`` within a round
(adjacent calls see the same machine load), with its min-max. The deviation is
``max |variant - exact|`` next to the tolerance ``1e-4 * max(1, max |exact|)``.
DifFace's two networks are timed separately (one UNet call = one of its 100
sampling steps; the SwinIR estimator once per image). This is what each
adapter's ``fast_path`` was chosen from (docs/experiments/speed.md).

    python benchmarks/bench_fastpath.py [--models codeformer,daefr,difface,iqpfr,puienet,nu2net]
                                        [--size 512] [--rounds 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"channels_last": (True, False), "SDPA": (False, True), "both": (True, True)}


def _calls(name: str, size: int):
    """``{label: fn(model)}``: what to time for adapter ``name`` on a (1, 3, size, size) input."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    if name.startswith("difface"):
        t = torch.tensor([396])
        return {f"{name} UNet (1 of 100 steps)": lambda m: m.run_net(x * 2 - 1, t),
                f"{name} SwinIR estimator": lambda m: m.estimate(x)}
    return {name: lambda m: m(x)}


def bench(name: str, size: int, rounds: int) -> list[str]:
    import adapters
    from iqprior.bench.profiling import interleaved, ratio_stats
    from iqprior.fastpath import FastPath, max_abs_deviation

    torch.manual_seed(0)
    opts = {"preset": "paper"} if name == "iqpfr" else {}
    base = adapters.create(name, exact=True, **opts)
    models = {"exact": base}
    for label, (cl, attn) in VARIANTS.items():
        m = copy.deepcopy(base).set_exact(False)
        m.fast_path = FastPath(channels_last=cl, attention=attn)
        models[label] = m
    chosen = base.fast_path.describe()  # the spec table's choice
    lines = []
    for label, fn in _calls(name, size).items():
        with torch.inference_mode():
            outs = {k: fn(m).float() for k, m in models.items()}   # warm-up and outputs
            times = interleaved({k: lambda m=m, f=fn: f(m) for k, m in models.items()}, rounds, warmup=0)
        ref = outs["exact"]
        tol = 1e-4 * max(1.0, float(ref.abs().max()))
        for k in models:
            med, lo, hi = ratio_stats(times["exact"], times[k])
            dev = max_abs_deviation(outs[k], ref)
            lines.append(f"| {label} | {k} | {statistics.median(times[k]) * 1000:.0f} | "
                         f"{med:.2f}x ({lo:.2f}–{hi:.2f}) | {dev:.1e} | "
                         f"{'✓' if dev <= tol else '✗'} ({tol:.1e}) | {chosen if k == 'exact' else ''} |")
            print(lines[-1], flush=True)
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="codeformer,daefr,difface,iqpfr,puienet,nu2net")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"fast vs exact, {args.size}², batch 1, CPU {torch.get_num_threads()} threads, random weights, "
          f"median of {args.rounds} interleaved rounds (per-round ratios)")
    print("| Network | Path | Median (ms) | Speed-up vs exact, median (min–max) | max abs Δ vs exact | "
          "within 1e-4·max(1,|exact|) | adapter default |")
    print("|---|---|---:|---:|---:|---|---|")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        bench(name, args.size, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
