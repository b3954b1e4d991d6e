"""DAEFR vs DAEFR+ forward time, side by side in one process, and parameters used at inference vs stored.

DAEFR (LIAGM/DAEFR, ICLR 2024) stores 152 M parameters (three VQ encoders, one
decoder, three codebooks, association and Transformer) but runs only part of
them at inference; DAEFR+ (IQPFR, arXiv 2503.09294) adds one level embedding
(10 x 256 x 16 x 16) on the Transformer's input feature.

    python benchmarks/bench_daefr.py                      # 512x512, CPU, 1 thread, 3 rounds
    python benchmarks/bench_daefr.py --device cuda --rounds 10 --batch 4

Both built by ``adapters.create`` (the spec's fast path, as ``iqprior bench speed``
runs them; ``--exact`` for the exact path), random weights (timing does not depend
on them), rounds interleaved. "Used at inference" is
measured: forward hooks record which modules run, and the parameters of
those modules (plus ``position_emb``) are counted.
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
    ap.add_argument("--exact", action="store_true", help="the exact path instead of the spec's fast path")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    base = adapters.create("daefr", exact=args.exact).to(device)
    plus = adapters.create("daefr+", exact=args.exact).to(device)
    plus.net.load_state_dict(base.net.state_dict())
    x = torch.rand(args.batch, 3, 512, 512, device=device)

    stored = sum(p.numel() for p in base.net.parameters())
    used, never = used_parameter_count(base, x)  # also the warm-up of the base model
    with torch.no_grad():
        plus(x)  # warm-up
        times = interleaved({"daefr": lambda: base(x), "daefr+": lambda: plus(x, score=9)}, args.rounds, device,
                            warmup=0)
    med = medians(times)
    result = {
        "device": str(device), "threads": args.threads, "batch": args.batch, "size": 512, "rounds": args.rounds,
        "seconds_median": med, "seconds_all": times, "path": base.active_path.describe(),
        "ratio_plus_over_base": ratio_stats(times["daefr+"], times["daefr"])[0],
        "params_stored": stored, "params_used_at_inference": used,
        "params_added_by_plus": plus.score_embedding.weight.numel(), "modules_never_run": never,
    }
    print(f"DAEFR  forward {med['daefr']:.3f} s   DAEFR+ forward {med['daefr+']:.3f} s   "
          f"ratio {result['ratio_plus_over_base']:.3f}  ({device}, batch {args.batch}, 512x512, "
          f"{result['path']}, median of {args.rounds} per-round ratios)")
    print(f"parameters stored {stored / 1e6:.2f} M, used at inference {used / 1e6:.2f} M "
          f"({100 * used / stored:.1f}%); DAEFR+ adds {result['params_added_by_plus'] / 1e6:.3f} M")
    print(f"never run at inference: {', '.join(never)}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
