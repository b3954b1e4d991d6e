"""CodeFormer vs CodeFormer+ forward time at 512x512, side by side in one process.

CodeFormer+ (IQPFR, arXiv 2503.09294, Eq. 7) adds one level embedding
(10 x 256 x 16 x 16) to the LQ encoder's output through a forward hook; this
measures what that costs. Both models are built by ``adapters.create`` (the
spec's fast path applied, as ``iqprior bench speed`` and ``iqprior restore`` run
them) and share the same random weights (timing does not depend on them); the
rounds interleave them (:func:`iqprior.bench.profiling.interleaved`).

    python benchmarks/bench_codeformer.py                       # CPU, 1 thread, 3 rounds
    python benchmarks/bench_codeformer.py --device cuda --batch 8 --rounds 20 --dtype bf16
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adapters  # noqa: E402
from iqprior.bench.profiling import interleaved, medians, ratio_stats  # noqa: E402
from iqprior.fastpath import PRECISIONS  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fidelity", type=float, default=0.5)
    ap.add_argument("--dtype", choices=sorted(PRECISIONS), default="fp32",
                    help="the adapters' precision (autocast; cuda: bf16/fp16)")
    ap.add_argument("--exact", action="store_true", help="the exact path instead of the spec's fast path")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    opts = dict(fidelity=args.fidelity, precision=args.dtype, exact=args.exact)
    base = adapters.create("codeformer", **opts).to(device)
    plus = adapters.create("codeformer+", **opts).to(device)
    plus.net.load_state_dict(base.net.state_dict())
    x = torch.rand(args.batch, 3, 512, 512, device=device)
    with torch.no_grad():
        y0, y1 = base(x), plus(x, score=9)  # "+" at init equals the base
        same = float((y0.float() - y1.float()).abs().max())
        times = interleaved({"codeformer": lambda: base(x), "codeformer+": lambda: plus(x, score=9)},
                            args.rounds, device, warmup=0)  # the calls above warmed both up
    med = medians(times)
    result = {"device": str(device), "threads": args.threads, "batch": args.batch, "size": 512,
              "dtype": args.dtype, "path": base.active_path.describe(), "rounds": args.rounds,
              "fidelity": args.fidelity,
              "seconds_median": med, "seconds_all": times,
              "images_per_second": {k: args.batch / v for k, v in med.items()},
              "ratio_plus_over_base": ratio_stats(times["codeformer+"], times["codeformer"])[0],
              "params": sum(p.numel() for p in base.net.parameters()),
              "params_added_by_plus": plus.score_embedding.weight.numel(),
              "max_abs_diff_plus_vs_base_at_init": same}
    print(f"CodeFormer  {med['codeformer']:.3f} s ({result['images_per_second']['codeformer']:.2f} img/s)   "
          f"CodeFormer+ {med['codeformer+']:.3f} s ({result['images_per_second']['codeformer+']:.2f} img/s)   "
          f"ratio {result['ratio_plus_over_base']:.3f}  ({device}, {args.dtype}, batch {args.batch}, 512x512, "
          f"{result['path']}, median of {args.rounds} per-round ratios)")
    print(f"parameters {result['params'] / 1e6:.2f} M; CodeFormer+ adds {result['params_added_by_plus'] / 1e6:.3f} M; "
          f"max |plus - base| at init {same:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
