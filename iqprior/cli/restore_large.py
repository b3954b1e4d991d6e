"""The parts of ``iqprior restore`` for large images, video, colour and precision (wired in by restore.py).

- ``--tile N [--tile-overlap M]`` / ``--max-memory SIZE``: image models run tile by tile into a uint8
  canvas (:mod:`iqprior.tiling`); face models are not tiled (their crops are already at the native 512²).
- videos (``clip.mp4``...): frame by frame, resumable, audio copied (:mod:`iqprior.video`).
- ``--color-fix``: :mod:`iqprior.colorfix`; ``--precision`` falls back to fp32 per input on NaN/Inf
  (:class:`iqprior.precision_guard.PrecisionGuard`), counted in the summary.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..colorfix import COLOR_FIXES, DEFAULT_COLOR_FIX

__all__ = ["add_arguments", "check_arguments", "wrap_model", "split_videos", "uses_tiles", "restore_image_file",
           "restore_videos"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..tiling import DEFAULT_OVERLAP

    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="image models: run N×N tiles (the model's input side) blended into the result, in memory "
                        "bounded by the input and output; face models are not tiled")
    p.add_argument("--tile-overlap", type=int, default=DEFAULT_OVERLAP, metavar="M",
                   help=f"pixels neighbouring tiles share (default {DEFAULT_OVERLAP}); the seam is cross-faded "
                        f"over M/2 of them")
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="choose the tile side so the run stays within SIZE (e.g. 4G, 800M); untiled if it fits")
    p.add_argument("--color-fix", choices=COLOR_FIXES, default=DEFAULT_COLOR_FIX,
                   help=f"match the output's colours to the input's (default {DEFAULT_COLOR_FIX}: measured in "
                        f"docs/guides/large-images-and-video.md)")


def check_arguments(args: argparse.Namespace) -> Optional[int]:
    """Validate the flags; returns ``--max-memory`` in bytes (or ``None``)."""
    from ..tiling import parse_memory

    if args.tile is not None and args.tile < 16:
        raise ValueError(f"--tile must be at least 16 px, got {args.tile}")
    if args.tile_overlap < 0:
        raise ValueError(f"--tile-overlap must be >= 0, got {args.tile_overlap}")
    if args.tile is not None and args.tile < 2 * args.tile_overlap:
        raise ValueError(f"--tile {args.tile} must be at least twice --tile-overlap {args.tile_overlap}")
    budget = parse_memory(args.max_memory) if args.max_memory is not None else None
    if args.tile is not None and budget is not None:
        raise ValueError("give --tile N or --max-memory SIZE, not both")
    return budget


def wrap_model(model: Any, color_fix: str, tiled: bool):
    """``(runner, guard)``: the model behind the fp32 fallback and the per-call colour fix (``adain`` on
    tiles is applied once to the whole result instead)."""
    from ..colorfix import ColorFixed
    from ..precision_guard import PrecisionGuard

    guard = PrecisionGuard(model)
    per_call = "none" if (tiled and color_fix == "adain") else color_fix
    return ColorFixed(guard, per_call), guard


def uses_tiles(args: argparse.Namespace, model: Any) -> bool:
    """Whether inputs of this run go through the tiled path (image models with --tile or --max-memory)."""
    tiled = args.tile is not None or args.max_memory is not None
    if tiled and (model.task == "face" or getattr(args, "faces", False)):
        print(f"note: {model.adapter_name} is a face model: its crops are at the native "
              f"{model.native_size or 512}² and are not tiled (--tile/--max-memory ignored)", file=sys.stderr)
        return False
    return tiled and not args.aligned


def split_videos(inputs: list[str]) -> tuple[list[str], list[Path]]:
    """``(image inputs, video files)``: explicit video files, and videos found in folders."""
    from ..video import VIDEO_EXTENSIONS, is_video

    images, videos = [], []
    for item in inputs:
        p = Path(item)
        if p.is_file() and is_video(p):
            videos.append(p)
            continue
        images.append(item)
        if p.is_dir():
            videos += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
    return images, videos


def restore_image_file(runner: Any, src: Path, dst: Path, args: argparse.Namespace, score: Any, device,
                       budget: Optional[int]) -> dict:
    from ..tiling.files import restore_file_tiled

    r = restore_file_tiled(runner, src, dst, tile=args.tile, overlap=args.tile_overlap, score=score,
                           device=device, color_fix=args.color_fix, max_memory=budget)
    if budget is not None:
        chosen = f"tiles of at most {r['tile']} px" if r["tile"] else "untiled (it fits)"
        print(f"{src.name}: --max-memory {args.max_memory}: {chosen}", file=sys.stderr)
    return r


def frame_function(runner: Any, restorer: Any, args: argparse.Namespace, score: Any, device, tiled: bool,
                   budget: Optional[int], guard: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``RGB uint8 frame -> RGB uint8 result`` for one video frame (faces: detected in every frame; a frame
    without a face is copied through)."""
    from ..tiling import restore_tiled
    from ..tiling.files import tile_align, tile_multiple

    chosen: dict[str, Optional[int]] = {}

    def run(rgb: np.ndarray) -> np.ndarray:
        guard.begin()
        if tiled:
            if "tile" not in chosen:
                from ..tiling import choose_tile

                chosen["tile"] = args.tile if args.tile is not None else choose_tile(
                    runner, budget, rgb.shape[0], rgb.shape[1], args.tile_overlap, device=device,
                    multiple=tile_multiple(runner))
            tile = chosen["tile"] or max(rgb.shape[:2])
            out = restore_tiled(runner, rgb, tile, args.tile_overlap if chosen["tile"] else 0, score=score,
                                device=device, multiple=tile_multiple(runner), align=tile_align(runner))
            if args.color_fix == "adain":
                from ..colorfix import adain_canvas
                adain_canvas(out, rgb)
            return out
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)
        (y, _n), = restorer.restore([x], score)
        if not torch.isfinite(y).all():
            raise ValueError("the model's output has NaN/Inf values")
        return (y.clamp(0, 1) * 255).round_().to(torch.uint8).permute(1, 2, 0).numpy()

    return run


def restore_videos(videos: list[Path], out_dir: Path, make_frame_fn: Callable[[], Callable], args, name: str,
                   failed: list) -> int:
    """Restore each clip into ``out_dir`` (same file name and container); returns how many were done."""
    from ..video import VideoError, open_clip, restore_video

    done = 0
    for v in videos:
        dst = out_dir / v.name
        if dst.exists() and not args.overwrite:
            print(f"{dst} exists: skipped (--overwrite redoes it)", file=sys.stderr)
            continue
        try:
            open_clip(v)
            r = restore_video(v, dst, make_frame_fn(), progress=not args.no_progress, desc=f"{v.name} ({name})")
            if r["resumed"]:
                print(f"{v.name}: resumed, {r['resumed']} of {r['frames']} frames were already done", file=sys.stderr)
            done += 1
        except (VideoError, ValueError, RuntimeError, OSError) as e:
            if args.debug:
                raise
            failed.append((v, e))
    return done
