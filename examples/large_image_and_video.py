"""Large images in bounded memory and a video with its audio, with any image model.

Runs a small random-weight Real-ESRGAN-family network (``Compact``, ×2; outputs are meaningless: pass
``--checkpoint realesr-animevideov3.pth`` after ``iqprior weights download realesr-animevideov3.pth`` for
real ones) tile by tile over a bundled photo through the Python API, then restores a short clip it makes
(with an audio track) through ``iqprior restore``, which keeps the frame count, rate and audio.

    python examples/large_image_and_video.py [--checkpoint FILE] [--out results/large]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import adapters
import iqprior
from iqprior.cli import main as iqprior_main

DATA = Path(__file__).resolve().parent / "data"


def make_clip(path: Path, frames: int = 8, size: tuple[int, int] = (64, 48), rate: int = 12) -> Path:
    """A short H.264 clip with an AAC tone, written with PyAV."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = c.add_stream("aac", rate=22050)
        a.layout = "mono"
        for i in range(frames):
            img = np.full((size[1], size[0], 3), 30 * i % 256, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        tone = (0.2 * np.sin(np.arange(22050 * frames // rate) * 0.12)).astype(np.float32)[None]
        for k in range(0, tone.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, k:k + 1024]), format="fltp", layout="mono")
            f.sample_rate = 22050
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="a model file (default: a tiny random-weight Compact x2)")
    ap.add_argument("--out", default="results/large")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.checkpoint:
        model, flags = adapters.create("auto", checkpoint=args.checkpoint), ["--checkpoint", args.checkpoint]
    else:
        model = adapters.create("auto", tiny=True, tiny_family="Compact")
        flags = ["--option", "tiny=true", "--option", "tiny_family=Compact"]
        print("random weights: the outputs only show the pipeline")
    photo = sorted((DATA / "underwater").glob("*.png"))[0]
    rgb = cv2.imread(str(photo))[:, :, ::-1].copy()
    result = iqprior.restore_tiled(model.eval(), rgb, tile=128, overlap=32)  # uint8 in, uint8 out
    cv2.imwrite(str(out / "tiled.png"), result[:, :, ::-1])
    print(f"{photo.name}: {rgb.shape[1]}x{rgb.shape[0]} -> {result.shape[1]}x{result.shape[0]} in 128 px tiles")
    clip = make_clip(out / "clip.mp4")
    rc = iqprior_main(["restore", str(clip), "--model", "auto", *flags, "--tile", "64", "--tile-overlap", "16",
                       "--out", str(out / "restored"), "--no-progress"])
    if rc:
        raise SystemExit(rc)
    print(f"restored clip: {out / 'restored' / 'clip.mp4'}")


if __name__ == "__main__":
    main()
