"""Reading and writing clips with PyAV (FFmpeg's libraries, bundled in the ``av`` wheel; no system ffmpeg).

:func:`open_clip` checks a file and describes its video stream (one line :class:`VideoError` for what
cannot be read); :func:`decode_frames` yields ``(pts, RGB uint8 frame)``; :func:`encode_clip` writes
restored frames with the input's time stamps (so the frame count, frame rate and duration stay) into the
input's container format and copies every audio packet untouched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

__all__ = ["VIDEO_EXTENSIONS", "VideoError", "ClipInfo", "open_clip", "decode_frames", "encode_clip", "is_video"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
# video codec per container: H.264 where the container takes it, VP9 for WebM
_CODECS = {".webm": "libvpx-vp9"}
_DEFAULT_CODEC = "libx264"
CRF = 16  # visually lossless for H.264 (x264's scale: 0 lossless, 23 default)


class VideoError(ValueError):
    """A clip that cannot be read or written (one line)."""


@dataclass(frozen=True)
class ClipInfo:
    """The video stream of a clip: ``frames`` (as the container states it; 0 = unknown), ``rate``,
    ``time_base``, ``size`` ``(W, H)``, and whether it has ``audio``."""

    path: Path
    frames: int
    rate: Fraction
    time_base: Fraction
    size: tuple[int, int]
    audio: bool


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _av():
    try:
        import av
    except ImportError:
        raise VideoError("video needs PyAV: pip install 'iqprior[video]' (or pip install av)") from None
    return av


def open_clip(path: str | os.PathLike) -> ClipInfo:
    """Describe ``path``'s first video stream; a :class:`VideoError` line for an unreadable file."""
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no such video file: {path}")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoError(f"{path} has no video stream")
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            if not rate or v.codec_context.width <= 0:
                raise VideoError(f"{path}: the video stream has no frame rate or size")
            return ClipInfo(path, int(v.frames or 0), Fraction(rate), Fraction(v.time_base),
                            (v.codec_context.width, v.codec_context.height), bool(c.streams.audio))
    except VideoError:
        raise
    except Exception as e:  # av.error.*: corrupt, truncated, unsupported
        raise VideoError(f"{path} cannot be read as a video: {_reason(e)}") from None


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def decode_frames(path: str | os.PathLike) -> Iterator[tuple[int, np.ndarray]]:
    """``(pts, (H, W, 3) RGB uint8)`` for each frame of the first video stream, in presentation order."""
    av = _av()
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            last = None
            for frame in c.decode(stream):
                pts = frame.pts if frame.pts is not None else (0 if last is None else last + 1)
                last = pts
                yield pts, frame.to_ndarray(format="rgb24")
    except Exception as e:
        if isinstance(e, (VideoError, GeneratorExit)):
            raise
        raise VideoError(f"{path}: decoding failed: {_reason(e)}") from None


def encode_clip(src: str | os.PathLike, dst: str | os.PathLike, frames: Iterable[tuple[int, np.ndarray]],
                info: ClipInfo, suffix: Optional[str] = None) -> Path:
    """Write ``frames`` (``(pts, RGB uint8)``, in order, the input's time base) to ``dst`` with the input's
    rate, and copy ``src``'s audio packets (bytes untouched) into it. ``suffix``: the container's file
    suffix when ``dst`` is a temporary name (default: ``dst``'s)."""
    av = _av()
    dst = Path(dst)
    suffix = (suffix or dst.suffix).lower()
    codec = _CODECS.get(suffix, _DEFAULT_CODEC)
    fmt = {".m4v": "mp4", ".mkv": "matroska"}.get(suffix, suffix.lstrip("."))
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        vs = None
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
        for pts, rgb in frames:
            if vs is None:
                h, w = rgb.shape[:2]
                vs = out.add_stream(codec, rate=info.rate)
                vs.width, vs.height = w, h
                # 4:2:0 needs even sides; odd sizes keep full chroma
                vs.pix_fmt = "yuv420p" if (w % 2 == 0 and h % 2 == 0) else "yuv444p"
                vs.time_base = info.time_base
                vs.codec_context.time_base = info.time_base
                vs.options = {"crf": str(CRF)} if codec == "libx264" else {}
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = pts
            frame.time_base = info.time_base
            for packet in vs.encode(frame):
                out.mux(packet)
        if vs is None:
            raise VideoError(f"{src} has no frames")
        for packet in vs.encode(None):
            out.mux(packet)
        if audio_out is not None:
            for packet in inp.demux(audio_in):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = audio_out
                out.mux(packet)
    return dst
