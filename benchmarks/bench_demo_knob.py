"""Does the bundled demo model follow the level? ``python benchmarks/bench_demo_knob.py`` (about a minute on CPU).

The bundled ``minires+`` of ``iqprior demo`` (iqprior/demo/assets/minires-plus) on the 8 bundled images
(examples/data; whole images over 640 px halved), at levels 0..9:

- sharpness: mean absolute horizontal + vertical gradient of the output over the input's (1 = as sharp);
- the mean absolute difference between the outputs at levels 0 and 9, in grey levels (0..255);
- the demo's displayed quality score (the ensemble of the members ``iqprior demo`` shows, default offline).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from iqprior.demo.service import DemoService
from iqprior.io import list_images, read_image

ROOT = Path(__file__).resolve().parents[1]


def sharpness(x: torch.Tensor) -> float:
    return float((x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, 1:, :] - x[:, :-1, :]).abs().mean())


def main() -> None:
    torch.set_num_threads(1)
    service = DemoService(device="cpu")
    model = service.model()
    sharp, diff, score = [], [], []
    for path in list_images(ROOT / "examples" / "data"):
        x = read_image(path)
        if max(x.shape[1:]) > 640:
            x = torch.nn.functional.interpolate(x[None], scale_factor=0.5, mode="area")[0]
        with torch.no_grad():
            ys = [model(x[None], score=level)[0].clamp(0, 1) for level in range(10)]
        sharp.append([sharpness(y) / sharpness(x) for y in ys])
        diff.append(float((ys[0] - ys[9]).abs().mean() * 255))
        score.append([service.score(y) for y in ys] + [service.score(x)])
    print(f"images: {len(diff)}; score members: {', '.join(service.scorer.names)}")
    print("sharpness / input's, levels 0..9:", " ".join(f"{v:.2f}" for v in np.mean(sharp, 0)))
    print("|level 0 - level 9| (grey levels) per image:", " ".join(f"{d:.1f}" for d in diff),
          f"mean {np.mean(diff):.1f}")
    print("displayed score, levels 0..9 | input:", " ".join(f"{v:.3f}" for v in np.mean(score, 0)[:10]),
          f"| {np.mean(score, 0)[10]:.3f}")


if __name__ == "__main__":
    main()
