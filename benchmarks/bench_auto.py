"""``auto`` / ``auto+`` vs spandrel's own model on the same file: forward time, interleaved.

Each round calls spandrel's descriptor (``ModelLoader().load_from_file`` is not
used: the state dict is read by iqprior and handed to spandrel, as ``auto``
does), ``auto`` and ``auto+`` on the same input, side by side
(:func:`iqprior.bench.profiling.interleaved`); the reported ratio is the median
over rounds of (spandrel time / adapter time), so drifting machine load cancels.
All calls run under ``inference_mode`` (spandrel's call sets it itself);
spandrel's call clamps its output, the adapters do not. The output difference
to spandrel is reported too (``auto`` vs spandrel ≤ 1e-5 is the contract).

    python benchmarks/bench_auto.py --file RealESRGAN_x4plus.pth --size 256
    python benchmarks/bench_auto.py --tiny SwinIR --size 64 --rounds 20    # no download: a tiny random file
    python benchmarks/bench_auto.py --file GFPGANv1.4.pth --size 512 --device cuda --rounds 20
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adapters  # noqa: E402
from adapters.auto.reading import load_descriptor, read_state_dict  # noqa: E402
from iqprior.bench.profiling import interleaved, medians, ratio_stats  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="a model file spandrel detects")
    src.add_argument("--tiny", help="a family of adapters.auto.tiny (random weights, written to a temp file)")
    ap.add_argument("--size", type=int, default=128, help="input side (default 128; face models: 512)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    path = args.file
    if args.tiny:
        from adapters.auto.tiny import write_tiny_file
        path = str(write_tiny_file(args.tiny, Path(tempfile.mkdtemp()) / f"{args.tiny}.pth"))
    ref = load_descriptor(read_state_dict(path), path).to(device).eval()
    base = adapters.create("auto", checkpoint=path).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plus = adapters.create("auto+", checkpoint=path).to(device)
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    signed = base._family.signed  # GFPGAN: spandrel's call feeds [0, 1] unmapped; compare its network as upstream runs it
    torch.manual_seed(0)
    with torch.no_grad():
        want = ref(x.clone()) if not signed else ((ref.model(x * 2 - 1)[0] + 1) / 2).clamp(0, 1)
        torch.manual_seed(0)
        diff = float((base(x).clamp(0, 1) - want).abs().max())
    calls = {"spandrel": lambda: ref(x.clone()), "auto": lambda: base(x), "auto+": lambda: plus(x, score=9)}
    with torch.inference_mode():  # as spandrel's call runs
        times = interleaved(calls, args.rounds, device, warmup=1)
    ratio = {k: ratio_stats(times["spandrel"], times[k])[0] for k in ("auto", "auto+")}
    result = {"file": Path(path).name, "architecture": base.architecture, "scale": base.scale, "size": args.size,
              "device": str(device), "threads": args.threads, "rounds": args.rounds,
              "median_ms": {k: round(1000 * v, 2) for k, v in medians(times).items()},
              "speed_vs_spandrel": {k: round(v, 3) for k, v in ratio.items()}, "max_abs_diff_auto_vs_spandrel": diff}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
