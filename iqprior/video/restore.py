"""Restore a clip frame by frame, resumably (``iqprior restore clip.mp4 --model M --out D``).

Each restored frame is kept as a PNG in a work folder beside the output (``D/.clip.mp4.frames/``, written
atomically) before the clip is encoded; a run that was interrupted (killed, out of power) finds the
frames it had finished and restores only the others. When every frame is done the clip is encoded
(:func:`iqprior.video.clip.encode_clip`: the input's time stamps and rate, its audio packets copied
untouched), written atomically, and the work folder removed.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .clip import decode_frames, encode_clip, open_clip

__all__ = ["restore_video", "work_folder"]


def work_folder(dst: str | os.PathLike) -> Path:
    """Where the finished frames of ``dst`` wait until the clip is encoded."""
    dst = Path(dst)
    return dst.parent / f".{dst.name}.frames"


def _frame_file(work: Path, i: int) -> Path:
    return work / f"{i:07d}.png"


def _write_frame(path: Path, rgb: np.ndarray) -> None:
    import cv2

    from ..io import atomic_write_bytes

    ok, enc = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError(f"cannot encode frame {path.name}")
    atomic_write_bytes(path, enc.tobytes())


def _read_frames(work: Path, pts: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    for i, p in enumerate(pts):
        bgr = cv2.imread(str(_frame_file(work, i)), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"the finished frame {_frame_file(work, i)} cannot be read; delete it and run again")
        yield p, bgr[:, :, ::-1]


def restore_video(src: str | os.PathLike, dst: str | os.PathLike, process: Callable[[np.ndarray], np.ndarray], *,
                  progress: bool = True, desc: str = "restore") -> dict[str, int]:
    """Restore every frame of ``src`` with ``process`` (``(H, W, 3)`` RGB uint8 -> RGB uint8, any scale) into
    the clip ``dst``. Returns ``{"frames": n, "resumed": frames found already done}``."""
    from tqdm import tqdm

    from ..io import atomic_path

    info = open_clip(src)
    dst = Path(dst)
    work = work_folder(dst)
    work.mkdir(parents=True, exist_ok=True)
    pts: list[int] = []
    resumed = 0
    bar = tqdm(total=info.frames or None, desc=desc, unit="frame", disable=not progress)
    try:
        for i, (p, rgb) in enumerate(decode_frames(src)):
            pts.append(p)
            f = _frame_file(work, i)
            if f.is_file():
                resumed += 1
            else:
                _write_frame(f, process(rgb))
            bar.update(1)
    finally:
        bar.close()
    with atomic_path(dst) as tmp:
        encode_clip(src, tmp, _read_frames(work, pts), info, suffix=dst.suffix)
    shutil.rmtree(work, ignore_errors=True)
    return {"frames": len(pts), "resumed": resumed}
