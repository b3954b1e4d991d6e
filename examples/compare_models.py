"""Compare restoration models on a folder of faces: the paper's table and a comparison grid, from Python.

    python examples/compare_models.py                                   # bundled faces, codeformer vs codeformer+
    python examples/compare_models.py --models daefr,daefr+ --data datasets/LFW-Test --metrics paper

Models whose official weights are on disk (``iqprior weights``, ``IQPRIOR_WEIGHTS``)
use them; the others run with RANDOM weights so that the pipeline can be seen
working anywhere (their numbers mean nothing, and the table says so). The same
as ``iqprior bench quality`` + ``iqprior bench grid``; see docs/guides/evaluating.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior import weights  # noqa: E402
from iqprior.bench.figures import comparison_grid  # noqa: E402
from iqprior.bench.quality import QualityConfig, run_quality  # noqa: E402


def checkpoint_or_random(name: str) -> str | None:
    """``"official"`` when every official file of ``name`` is on disk, else ``None`` (random weights)."""
    files = adapters.official_weights(name)
    return "official" if files and all(weights.find(f) is not None for f in files) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="codeformer,codeformer+")
    ap.add_argument("--data", default=str(ROOT / "examples" / "data" / "faces"))
    ap.add_argument("--metrics", default="paper,offline", help="unavailable ones are listed with the reason")
    ap.add_argument("--out", default="results/compare")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    available = adapters.list_adapters(available_only=True)
    missing = [m for m in models if m not in available]
    if missing:
        print(f"not available here: {', '.join(missing)} (available: {', '.join(available)})")
        return 1
    checkpoints = {m: c for m in models if (c := checkpoint_or_random(m)) is not None}
    for m in models:
        print(f"{m}: {'official weights' if m in checkpoints else 'RANDOM weights (official file not on disk)'}")

    cfg = QualityConfig(models=tuple(models), data=Path(args.data), out=Path(args.out), metrics=args.metrics,
                        checkpoints=checkpoints, random_init=True,
                        device="cuda" if torch.cuda.is_available() else "cpu")
    result = run_quality(cfg)
    print(result.files["markdown"].read_text())
    for key, why in result.unavailable.items():
        print(f"unavailable: {key}: {why}")

    grid = comparison_grid(Path(args.out), models, Path(args.data), None, [], Path(args.out) / "grid.png", size=192)
    print(f"table: {result.files['markdown']}, {result.files['csv']}; grid: {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
