"""Restore faces with CodeFormer+ at level 9: aligned crops, or whole photos (detect, align, paste back).

    python examples/restore_faces.py                                   # bundled aligned faces, random weights
    python examples/restore_faces.py --checkpoint codeformer.pth --fidelity 0.7 \
        --input examples/data/whole --whole                           # needs facexlib's weight files

Whole photos need `detection_Resnet50_Final.pth` and `parsing_parsenet.pth`
(`iqprior weights download ...` or IQPRIOR_WEIGHTS). Without --checkpoint the
network has random weights (a tiny configuration, so that it runs fast on a
CPU) and the outputs are not restored faces: the script says so.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior.faces.restorer import Restorer  # noqa: E402
from iqprior.io import list_images, read_image, write_image  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="codeformer+")
    ap.add_argument("--checkpoint", default=None, help="codeformer.pth, a fine-tuned directory, or 'official'")
    ap.add_argument("--input", default=str(ROOT / "examples" / "data" / "faces"))
    ap.add_argument("--whole", action="store_true", help="inputs are whole photos (face detection)")
    ap.add_argument("--fidelity", type=float, default=0.5)
    ap.add_argument("--score", type=int, default=9)
    ap.add_argument("--output", default="results/restore_faces")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    if args.checkpoint is None:
        print(f"note: no --checkpoint: {args.model} has RANDOM weights (tiny configuration); outputs are not faces")
    model = adapters.create(args.model, checkpoint=args.checkpoint, fidelity=args.fidelity, tiny=args.checkpoint is None)
    restorer = Restorer(model, batch_size=4, aligned=not args.whole)
    paths = list_images(args.input)
    results = restorer.restore([read_image(p) for p in paths], score=args.score)
    for path, (image, n_faces) in zip(paths, results):
        target = write_image(Path(args.output) / f"{path.stem}.png", image)
        print(f"{path.name}: {n_faces} face(s) -> {target}" if n_faces else f"{path.name}: no face, copied -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
