"""CodeFormer vs CodeFormer+ forward time at 512x512, side by side in one process.

CodeFormer+ (IQPFR, arXiv 2503.09294, Eq. 7) adds one level embedding
(10 x 256 x 16 x 16) to the LQ encoder's output through a forward hook; this
measures what that costs. Both models share the same random weights (timing
does not depend on them); each round runs CodeFormer then CodeFormer+.

    python benchmarks/bench_codeformer.py                       # CPU, 1 thread, 3 rounds
    python benchmarks/bench_codeformer.py --device cuda --batch 8 --rounds 20 --dtype bf16
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.codeformer import build_codeformer, build_codeformer_plus  # noqa: E402
from iqprior.bench.speed import timed  # noqa: E402

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fidelity", type=float, default=0.5)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="autocast dtype (cuda: bf16/fp16)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    base = build_codeformer(fidelity=args.fidelity).eval().to(device)
    plus = build_codeformer_plus(fidelity=args.fidelity).eval().to(device)
    plus.net.load_state_dict(base.net.state_dict())
    x = torch.rand(args.batch, 3, 512, 512, device=device)
    dtype = DTYPES[args.dtype]
    autocast = (torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
    times: dict[str, list[float]] = {"codeformer": [], "codeformer+": []}
    with torch.no_grad(), autocast:
        y0, y1 = base(x), plus(x, score=9)  # warm-up; also: "+" at init equals the base
        same = float((y0.float() - y1.float()).abs().max())
        for _ in range(args.rounds):
            for name, model in (("codeformer", base), ("codeformer+", plus)):
                times[name].append(timed(lambda m=model: m(x, score=9), device))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"device": str(device), "threads": args.threads, "batch": args.batch, "size": 512,
              "dtype": args.dtype, "rounds": args.rounds, "fidelity": args.fidelity,
              "seconds_median": med, "seconds_all": times,
              "images_per_second": {k: args.batch / v for k, v in med.items()},
              "ratio_plus_over_base": med["codeformer+"] / med["codeformer"],
              "params": sum(p.numel() for p in base.net.parameters()),
              "params_added_by_plus": plus.score_embedding.weight.numel(),
              "max_abs_diff_plus_vs_base_at_init": same}
    print(f"CodeFormer  {med['codeformer']:.3f} s ({result['images_per_second']['codeformer']:.2f} img/s)   "
          f"CodeFormer+ {med['codeformer+']:.3f} s ({result['images_per_second']['codeformer+']:.2f} img/s)   "
          f"ratio {result['ratio_plus_over_base']:.3f}  ({device}, {args.dtype}, batch {args.batch}, 512x512, "
          f"median of {args.rounds})")
    print(f"parameters {result['params'] / 1e6:.2f} M; CodeFormer+ adds {result['params_added_by_plus'] / 1e6:.3f} M; "
          f"max |plus - base| at init {same:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
