"""DAEFR vs DAEFR+ forward time, side by side in one process, and parameters used at inference vs stored.

DAEFR (LIAGM/DAEFR, ICLR 2024) stores 152 M parameters (three VQ encoders, one
decoder, three codebooks, association and Transformer) but runs only part of
them at inference; DAEFR+ (IQPFR, arXiv 2503.09294) adds one level embedding
(10 x 256 x 16 x 16) on the Transformer's input feature.

    python benchmarks/bench_daefr.py                      # 512x512, CPU, 1 thread, 3 rounds
    python benchmarks/bench_daefr.py --device cuda --rounds 10 --batch 4

Random weights (timing does not depend on them). "Used at inference" is
measured: forward hooks record which modules run, and the parameters of
those modules (plus ``position_emb``) are counted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.daefr import build_daefr, build_daefr_plus  # noqa: E402
from iqprior.bench.speed import timed  # noqa: E402


def used_parameter_count(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, list[str]]:
    """Parameters of the modules that run in one forward, and the parts of ``net`` none of whose modules run."""
    ran: set[str] = set()
    handles = [m.register_forward_hook(lambda mod, i, o, n=name: ran.add(n))
               for name, m in model.net.named_modules()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    # nn.MultiheadAttention calls its out_proj functionally (no hook fires): it runs when its parent does
    ran |= {f"{name}.{child}" for name, m in model.net.named_modules()
            if name in ran and isinstance(m, torch.nn.MultiheadAttention) for child, _ in m.named_children()}
    count = 0
    for name, m in model.net.named_modules():  # "" is net itself (position_emb)
        if name in ran:
            count += sum(p.numel() for p in m.parameters(recurse=False))
    parts = [n for n, _ in model.net.named_children() if n != "vqvae"]
    parts += [f"vqvae.{n}" for n, _ in model.net.vqvae.named_children()]
    never = [p for p in parts if not any(r == p or r.startswith(p + ".") for r in ran)]
    return count, never


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds; each runs DAEFR then DAEFR+")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    base = build_daefr().eval().to(device)
    plus = build_daefr_plus().eval().to(device)
    plus.net.load_state_dict(base.net.state_dict())
    x = torch.rand(args.batch, 3, 512, 512, device=device)

    stored = sum(p.numel() for p in base.net.parameters())
    used, never = used_parameter_count(base, x)  # also the warm-up of the base model
    with torch.no_grad():
        plus(x)  # warm-up
        times: dict[str, list[float]] = {"daefr": [], "daefr+": []}
        for _ in range(args.rounds):
            for name, model in (("daefr", base), ("daefr+", plus)):
                times[name].append(timed(lambda m=model: m(x, score=9), device))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "device": str(device), "threads": args.threads, "batch": args.batch, "size": 512, "rounds": args.rounds,
        "seconds_median": med, "seconds_all": times, "ratio_plus_over_base": med["daefr+"] / med["daefr"],
        "params_stored": stored, "params_used_at_inference": used,
        "params_added_by_plus": plus.score_embedding.weight.numel(), "modules_never_run": never,
    }
    print(f"DAEFR  forward {med['daefr']:.3f} s   DAEFR+ forward {med['daefr+']:.3f} s   "
          f"ratio {result['ratio_plus_over_base']:.3f}  ({device}, batch {args.batch}, 512x512, "
          f"median of {args.rounds})")
    print(f"parameters stored {stored / 1e6:.2f} M, used at inference {used / 1e6:.2f} M "
          f"({100 * used / stored:.1f}%); DAEFR+ adds {result['params_added_by_plus'] / 1e6:.3f} M")
    print(f"never run at inference: {', '.join(never)}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
