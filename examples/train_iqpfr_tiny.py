"""Train the three IQPFR stages on the bundled faces with the tiny CPU configuration (a few minutes).

    python examples/train_iqpfr_tiny.py [--out runs/iqpfr_tiny] [--steps 20]

1. Score the HQ images with the weight-free ensemble (``iqprior score --members offline``,
   calibrated over the set) -> ``scores.jsonl``: level and HQ+ flag per image.
2. Stage I  (dual codebook VQGAN)              -> out/s1
3. Stage II (level-conditioned code prediction) -> out/s2, initialised from s1
4. Stage III (quality optimisation)             -> out/s3, initialised from s2; the quality loss here is a
   cheap differentiable stand-in, because the paper's IQA networks need downloaded weights
   (``train.quality_members`` selects them when they are in the cache).
5. Restore one face at levels 0, 5 and 9 with the Stage III adapter.

The paper's runs use the same commands with ``--config iqpfr_stage{1,2,3}`` on FFHQ.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior.cli import main as cli  # noqa: E402
from iqprior.io import read_image, write_image  # noqa: E402
from iqprior.training.config import load_config  # noqa: E402
from iqprior.training.trainer import Trainer  # noqa: E402


def sharpness_loss(x: torch.Tensor) -> torch.Tensor:
    """Stand-in for -IQA(x): rewards local contrast (lower is better), differentiable."""
    return -(x[..., 1:, :] - x[..., :-1, :]).abs().mean() - (x[..., 1:] - x[..., :-1]).abs().mean()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/iqpfr_tiny")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out, faces = Path(args.out), ROOT / "examples" / "data" / "faces"
    scores = out / "scores.jsonl"
    if not scores.exists():
        rc = cli(["score", str(faces), "--members", "offline", "--out", str(scores), "--calibrate", "--device", "cpu",
                  "--no-progress"])
        if rc != 0:
            return rc
    common = [f"data.root={faces}", f"data.scores={scores}", "data.num_workers=0", f"train.steps={args.steps}"]
    init = None
    for stage in (1, 2, 3):
        cfg = load_config("tiny", common, stage=stage)
        trainer = Trainer(cfg, out / f"s{stage}", init=init, quality_fn=sharpness_loss if stage == 3 else None)
        trainer.run()
        init = out / f"s{stage}"
        print(f"stage {stage}: {out / f's{stage}'} (metrics.csv, val/, checkpoints/)")
    model = adapters.create("iqpfr", checkpoint=out / "s3" / "adapter")
    x = torch.nn.functional.interpolate(read_image(sorted(faces.glob("*.png"))[0])[None], size=64, mode="area")
    with torch.no_grad():
        row = torch.cat([x[0]] + [model(x, score=level)[0] for level in (0, 5, 9)], dim=2)
    write_image(out / "levels_0_5_9.png", row)
    print(f"input | level 0 | level 5 | level 9 -> {out / 'levels_0_5_9.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
