"""DifFace vs DifFace+ at 512x512: seconds per sampling step and per image, side by side in one process.

DifFace (zsyOAOA/DifFace) restores a face with one SwinIR estimator forward and
100 DDIM steps of a 160 M-parameter UNet (start at respaced step 100 of
"ddim250"); DifFace+ (IQPFR, arXiv 2503.09294) adds a 10 x 128 level embedding
to the UNet's timestep embedding, so its extra cost is one addition per step.

    python benchmarks/bench_difface.py                       # CPU, 1 thread, 2 steps, 1 round
    python benchmarks/bench_difface.py --device cuda --steps 100 --rounds 3 --precision fp16

Both are built by ``adapters.create`` (the spec's fast path, as ``iqprior bench
speed`` runs them; ``--exact`` for the exact path). Each round times, for the
base model and the "+" model, interleaved: the estimator alone, and a full call with ``start_step=STEPS`` (estimator + STEPS DDIM
steps). Per step = (call - estimator) / STEPS. Per image = estimator + 100 x
per step: **extrapolated** to the released 100 steps when ``--steps`` < 100
(a full CPU run takes 20+ minutes). Random weights (timing does not depend on
them); medians over rounds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adapters  # noqa: E402
from iqprior.bench.profiling import interleaved  # noqa: E402

RELEASED_STEPS = 100



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2, help="DDIM steps timed per call (default 2; released: 100)")
    ap.add_argument("--rounds", type=int, default=1, help="timed rounds; each runs DifFace then DifFace+")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--exact", action="store_true", help="the exact path instead of the spec's fast path")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if not 1 <= args.steps <= RELEASED_STEPS:
        ap.error(f"--steps must be in 1..{RELEASED_STEPS}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    base = adapters.create("difface", precision=args.precision, exact=args.exact).to(device)
    plus = adapters.create("difface+", precision=args.precision, exact=args.exact).to(device)
    plus.load_state_dict(base.state_dict(), strict=False)
    x = torch.rand(args.batch, 3, 512, 512, device=device)
    models = {"difface": base, "difface+": plus}

    def call(m):
        return lambda: m(x, score=9, start_step=args.steps, generator=torch.Generator(device=device).manual_seed(0))

    fns = {}
    for name, m in models.items():
        fns[f"{name} estimator"] = lambda m=m: m.estimate(x)
        fns[f"{name} call"] = call(m)
    # warm-up (kernels, allocator) on CUDA only, to keep the CPU run short
    times = interleaved(fns, args.rounds, device, warmup=1 if device.type == "cuda" else 0)
    est_t = {name: times[f"{name} estimator"] for name in models}
    call_t = {name: times[f"{name} call"] for name in models}
    result: dict = {"device": str(device), "threads": args.threads, "batch": args.batch, "size": 512,
                    "precision": args.precision, "path": base.active_path.describe(), "steps_timed": args.steps,
                    "rounds": args.rounds,
                    "extrapolated": args.steps < RELEASED_STEPS, "models": {}}
    for name in models:
        est = statistics.median(est_t[name])
        call = statistics.median(call_t[name])
        step = max(call - est, 0.0) / args.steps
        result["models"][name] = {"estimator_s": est, "call_s": call, "per_step_s": step,
                                  "per_image_s": (est + RELEASED_STEPS * step) / args.batch}
    b, p = result["models"]["difface"], result["models"]["difface+"]
    result["ratio_plus_over_base_per_step"] = p["per_step_s"] / b["per_step_s"] if b["per_step_s"] else None
    result["params"] = {"unet": sum(t.numel() for t in base.unet.parameters()),
                        "estimator": sum(t.numel() for t in base.estimator.parameters()),
                        "added_by_plus": plus.score_embedding.weight.numel()}
    note = (f"extrapolated from {args.steps} timed steps to {RELEASED_STEPS}" if result["extrapolated"]
            else f"{RELEASED_STEPS} steps timed")
    for name, r in result["models"].items():
        print(f"{name:9s} estimator {r['estimator_s']:.2f} s  per step {r['per_step_s']:.2f} s  "
              f"per image {r['per_image_s']:.1f} s ({note})")
    print(f"ratio +/base per step {result['ratio_plus_over_base_per_step']:.3f}  ({device}, {args.precision}, "
          f"batch {args.batch}, 512x512, {args.threads} thread(s), median of {args.rounds} round(s)); "
          f"DifFace+ adds {result['params']['added_by_plus']} parameters")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
