"""Restore the faces of a real photo offline: MTCNN finds them, Real-ESRGAN restores each aligned face.

    python examples/restore_real_photo.py                         # astronaut + Grace Hopper (if installed)
    python examples/restore_real_photo.py --photos coffee camera --checkpoint realesr-animevideov3.pth

The photos come from installed packages (:mod:`iqprior.data.photos`, each with
its licence); the detector's and Real-ESRGAN's weights from the install step
(`make install`, or `iqprior weights download RealESRGAN_x4plus.pth
mtcnn_facenet-pytorch-2.6.0.safetensors`). Real-ESRGAN is an image model,
not a face restorer: each face is aligned to the FFHQ template at 128 px and
upscaled to 512 px, then pasted back with a feathered square mask.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters  # noqa: E402
from iqprior.data import photos  # noqa: E402
from iqprior.faces.restorer import Restorer  # noqa: E402
from iqprior.io import write_image  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", nargs="*", default=["astronaut", "grace_hopper"])
    ap.add_argument("--checkpoint", default="RealESRGAN_x4plus.pth", help="a Real-ESRGAN file (registry name)")
    ap.add_argument("--output", default="results/restore_real_photo")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    model = adapters.create("auto", checkpoint=args.checkpoint)
    restorer = Restorer(model, faces=True, batch_size=1)
    print(f"faces: {restorer.describe()}")
    out = Path(args.output)
    for name in photos.available(args.photos):
        (image, n), = restorer.restore([photos.load(name)], 9)
        write_image(out / f"{name}.png", image)
        print(f"{name}: {n} face(s) -> {out / (name + '.png')} ({photos.PHOTOS[name].licence})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
