"""Score a folder of images with the NR-IQA ensemble, calibrate it, and read the levels.

    python examples/score_dataset.py [DIR] [--members offline|paper|name,name]

Defaults to the bundled samples and the weight-free members (piqe, entropy) so it
runs anywhere; use ``--members paper`` where the TOPIQ weights are on disk. The
same job from the shell: ``iqprior score DIR --members paper --calibrate --out
scores.jsonl --plot hist.png``.
"""
import argparse
from pathlib import Path

import iqprior
from iqprior.io import read_image
from iqprior.scoring.job import score_directory
from iqprior.scoring.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]

ap = argparse.ArgumentParser()
ap.add_argument("dir", nargs="?", default=str(ROOT / "examples" / "data"))
ap.add_argument("--members", default="offline")
ap.add_argument("--out", default="results/example_scores/scores.jsonl")
args = ap.parse_args()

scorer = iqprior.create_scorer(args.members)
result = score_directory(args.dir, scorer, args.out, calibrate=True, plot=Path(args.out).with_suffix(".png"))
print(f"manifest: {result.manifest}  calibration: {result.calibration}  histogram: {result.histogram}")
for rec in read_manifest(result.manifest):
    if rec.get("error"):
        print(f"{rec['path']:32s} error: {rec['error']}")
    else:
        print(f"{rec['path']:32s} score {rec['score']:.3f}  level {rec['level']}  raw {rec['raw']}")

# The calibration now maps any new image's raw scores onto the dataset's scale:
scorer = iqprior.create_scorer(args.members, calibration=result.calibration)
first = sorted(Path(args.dir).rglob("*.png"))[0]
print(f"{first.name}: level {int(iqprior.score_to_level(scorer(read_image(first)[None])))}")
