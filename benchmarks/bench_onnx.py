"""onnxruntime (CPU) vs PyTorch's default path per model, calls interleaved in one process.

Each model (full size, random weights) is exported with :func:`iqprior.export.export_onnx`
(fp32) and run by :class:`iqprior.export.OnnxModel` (graph optimisations on, ``--threads``
intra-op threads); PyTorch runs the adapter's default (fast) path with the same number of
threads. Per round both run once on the same (1, 3, S, S) input, order reversed every round
(:func:`iqprior.bench.profiling.interleaved`); the speed-up is the median over rounds of
``t_torch / t_onnxruntime`` within a round (adjacent calls see the same machine load), with its
min-max. ``dev`` is ``max |onnxruntime - PyTorch exact|`` on that input; ``export`` the export
time (trace, metadata).

    python benchmarks/bench_onnx.py [--models codeformer+,daefr+,iqpfr,puienet+,nu2net+]
                                    [--size 512] [--rounds 5] [--threads 2] [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iqprior.bench.profiling import interleaved, medians, ratio_stats  # noqa: E402

DEFAULT_MODELS = "codeformer+,daefr+,iqpfr,puienet+,nu2net+"
HEADER = ("| model | size | PyTorch default (ms) | onnxruntime (ms) | speed-up (min–max) | "
          "dev vs exact | export (s) |\n|---|---|---|---|---|---|---|")


def bench(name: str, size: int, rounds: int, threads: int, out_dir: Path) -> str:
    import adapters
    from iqprior.export import OnnxModel, export_onnx
    from iqprior.export.verify import compare

    torch.manual_seed(0)
    opts = {"preset": "paper"} if name == "iqpfr" else {}
    model = adapters.create(name, **opts)
    t0 = time.perf_counter()
    path = out_dir / f"{name.replace('+', '_plus')}.onnx"
    export_onnx(model, path, random_weights=True, verify=False)
    export_s = time.perf_counter() - t0
    runner = OnnxModel(path, threads=threads)
    s = model.native_size or size
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(1))
    level = torch.tensor([9]) if runner.is_conditioned else None
    kw = {} if level is None else {"score": level}
    dev = compare(runner, model, x, level)
    model.set_exact(False)  # the default path, as adapters.create gives it
    with torch.inference_mode():
        times = interleaved({"torch": lambda: model(x, **kw), "onnxruntime": lambda: runner(x, **kw)}, rounds)
    med = {k: v * 1000 for k, v in medians(times).items()}
    ratio, lo, hi = ratio_stats(times["torch"], times["onnxruntime"])
    return (f"| {name} | {s}² | {med['torch']:.0f} | {med['onnxruntime']:.0f} | {ratio:.2f}x "
            f"({lo:.2f}–{hi:.2f}) | {dev:.1e} | {export_s:.0f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--size", type=int, default=512, help="input side of image models (face models: native)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="keep the exported files here (default: a temporary folder)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, rounds {args.rounds}, torch {torch.__version__}", flush=True)
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for name in args.models.split(","):
            try:
                print(bench(name.strip(), args.size, args.rounds, args.threads, out), flush=True)
            except Exception as e:  # one failing model does not stop the table
                print(f"| {name} | failed: {type(e).__name__}: {str(e)[:200]} |||||", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
