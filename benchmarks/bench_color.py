"""Colour shift of each model, with and without ``--color-fix``: mean ΔE00 after a low-pass.

For each model file and each scikit-image bundled photo (resized so the short side is ``--side``): the
model's output ``y`` (untiled, fp32), the input resized to ``y``'s size (bicubic) ``x``; both low-passed
(Gaussian, sigma ``--sigma`` output pixels: what remains is colour, not detail) and converted to CIELAB;
the figure is the mean CIEDE2000 difference over pixels, then over photos. ``none`` is the model as it is,
``adain`` / ``wavelet`` the two fixes of :mod:`iqprior.colorfix` applied to the same output.

    python benchmarks/bench_color.py --models realesr-animevideov3.pth,RealESRGAN_x4plus_anime_6B.pth,\
RealESRGAN_x4plus.pth,minires+=iqprior/demo/assets/minires-plus --photos astronaut,coffee,chelsea --side 96
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def delta_e(x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    import cv2
    from skimage.color import deltaE_ciede2000, rgb2lab

    def prep(t):
        a = t[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
        return rgb2lab(cv2.GaussianBlur(a, (0, 0), sigma))

    return float(deltaE_ciede2000(prep(x), prep(y)).mean())


def main() -> None:
    import cv2
    import skimage.data

    import adapters
    from iqprior.colorfix import adain_fix, wavelet_fix

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="realesr-animevideov3.pth,RealESRGAN_x4plus_anime_6B.pth,"
                                       "RealESRGAN_x4plus.pth")
    p.add_argument("--photos", default="astronaut,coffee,chelsea")
    p.add_argument("--side", type=int, default=96)
    p.add_argument("--sigma", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models.split(","):
        adapter, _, ckpt = name.rpartition("=")  # "FILE" (auto) or "ADAPTER=CHECKPOINT"
        model = adapters.create(adapter or "auto", checkpoint=ckpt).eval()
        per = {"none": [], "adain": [], "wavelet": []}
        for ph in args.photos.split(","):
            img = getattr(skimage.data, ph)()[:, :, :3]
            h, w = img.shape[:2]
            f = args.side / min(h, w)
            img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
            with torch.no_grad():
                y = model(x)
            up = torch.nn.functional.interpolate(x, size=y.shape[-2:], mode="bicubic", align_corners=False)
            per["none"].append(delta_e(up, y, args.sigma))
            per["adain"].append(delta_e(up, adain_fix(y, x), args.sigma))
            per["wavelet"].append(delta_e(up, wavelet_fix(y, x), args.sigma))
        row = {"model": name, "architecture": getattr(model, "architecture", adapter),
               "scale": getattr(model, "scale", 1),
               **{k: float(np.mean(v)) for k, v in per.items()}, "per_photo": per}
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = {"photos": args.photos, "side": args.side, "sigma": args.sigma, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
