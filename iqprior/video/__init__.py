"""Video in and out (``iqprior restore clip.mp4``): PyAV decoding/encoding, audio copied, resumable."""
from __future__ import annotations

from .clip import VIDEO_EXTENSIONS, ClipInfo, VideoError, decode_frames, encode_clip, is_video, open_clip
from .restore import restore_video, work_folder

__all__ = ["VIDEO_EXTENSIONS", "ClipInfo", "VideoError", "decode_frames", "encode_clip", "is_video", "open_clip",
           "restore_video", "work_folder"]
