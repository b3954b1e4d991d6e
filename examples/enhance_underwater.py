"""Enhance underwater photos with NU2Net+ or PUIE-Net+ at quality level 9, and score them with UIQM / UCIQE.

    python examples/enhance_underwater.py                                   # bundled samples, nu2net+
    python examples/enhance_underwater.py --model puienet+ --checkpoint puie.pth --input my_dir

``--checkpoint`` is the official file (``NU2Net_ckpt.pth`` / ``puie.pth``), a
directory written by ``save_pretrained`` (e.g. after ``iqprior finetune``), or
``official`` (looked up through ``IQPRIOR_WEIGHTS`` / the cache). Without one
the network has random weights and the output is meaningless: the script says
so. Images of any size are processed whole.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior.io import list_images, read_image, write_image  # noqa: E402
from iqprior.scoring.underwater import UCIQE, UIQM  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nu2net+", choices=["nu2net", "nu2net+", "puienet", "puienet+"])
    ap.add_argument("--checkpoint", default=None, help="official file, saved directory, or 'official'")
    ap.add_argument("--input", default=str(ROOT / "examples" / "data" / "underwater"))
    ap.add_argument("--output", default="results/underwater")
    ap.add_argument("--score", type=int, default=9, help="quality level 0..9 for a '+' model")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))

    model = adapters.create(args.model, checkpoint=args.checkpoint)
    if args.checkpoint is None:
        print(f"note: no --checkpoint given, {args.model} has RANDOM weights; outputs are not enhanced images")
    uiqm, uciqe = UIQM(), UCIQE()
    out_dir = Path(args.output)
    for path in list_images(args.input):
        x = read_image(path)[None]
        with torch.no_grad():
            y = model(x, score=args.score).clamp(0, 1)
        target = write_image(out_dir / f"{path.stem}.png", y[0])
        print(f"{path.name}: UIQM {uiqm(x).item():.3f} -> {uiqm(y).item():.3f}, "
              f"UCIQE {uciqe(x).item():.3f} -> {uciqe(y).item():.3f}  ({target})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
