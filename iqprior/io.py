"""Image files in and out, and atomic file writes.

Reading converts every decodable image to RGB float32 in [0, 1]: 16-bit images
are scaled by 65535, gray is repeated to 3 channels, RGBA is composited on
white (alpha is not image content), palette images are expanded. Anything that
cannot be decoded raises :class:`ImageReadError` with the reason.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from .image_header import ImageReadError, header_size

__all__ = ["ImageReadError", "NonFiniteError", "MAX_PIXELS", "MIN_SIDE", "IMAGE_EXTENSIONS", "header_size",
           "read_image", "read_image_array", "write_image", "atomic_path", "atomic_write_bytes",
           "atomic_write_text", "fsync_directory", "check_finite", "check_image_batch", "list_images", "tensor_to_uint8",
           "to_rgb_float"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MIN_SIDE = 8              # smaller images cannot be scored or restored meaningfully
MAX_PIXELS = 100_000_000  # 100 MP; larger images are refused rather than exhausting memory
MAX_FILE_BYTES = 2 << 30  # 2 GiB: above a 100 MP 16-bit RGBA image stored uncompressed
# OpenCV's own cap, read once when cv2 loads (iqprior/__init__.py sets it first as well)
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


class NonFiniteError(ValueError):
    """A tensor holds NaN or Inf where an image or a score is expected."""


def check_image_batch(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Validate a ``(B, 3, H, W)`` float RGB batch (nominally in [0, 1]); return it unchanged."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (B, 3, H, W) RGB in [0, 1], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got {x.dtype}")
    return x


def check_finite(x: torch.Tensor, what: str = "x") -> torch.Tensor:
    """Raise :class:`NonFiniteError` when ``x`` holds NaN or Inf (a broken input, model or checkpoint)."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        n = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(f"{what} has {n} NaN/Inf value(s) (a broken input, or NaN weights in the checkpoint)")
    return x


def list_images(root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``root`` (recursively, sorted); ``root`` may also be one file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"no such file or directory: {root}")
    exts = {e.lower() for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


_WARNED_CV2_CAP: list[bool] = []


def _warn_if_opencv_cap_missed() -> None:
    """Once per process: cv2 was imported before iqprior, so OpenCV's own pixel cap is its default."""
    # the package's __init__ ran before this module (it is iqprior.io): read its flag without an import edge
    if getattr(sys.modules.get("iqprior"), "OPENCV_CAP_MISSED", False) and not _WARNED_CV2_CAP:
        import warnings

        _WARNED_CV2_CAP.append(True)
        warnings.warn("cv2 was imported before iqprior, so OpenCV's own pixel cap is its default (2**30 pixels), "
                      f"not {MAX_PIXELS / 1e6:.0f} MP; iqprior's header check still bounds every image. Import "
                      "iqprior first, or set OPENCV_IO_MAX_IMAGE_PIXELS before cv2 loads.", RuntimeWarning, stacklevel=3)


def read_image_array(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode ``path`` to an ``(H, W, 3)`` float32 RGB array in [0, 1]."""
    import cv2

    _warn_if_opencv_cap_missed()

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # before reading it into memory
            raise ImageReadError(f"{path} is {size / 2**30:.1f} GiB, above the {MAX_FILE_BYTES / 2**30:.0f} GiB "
                                 f"limit for one image file")
        data = path.read_bytes()
    except OSError as e:
        raise ImageReadError(f"cannot read {path}: {e.strerror or e}") from None
    if not data:
        raise ImageReadError(f"{path} is empty (0 bytes)")
    # The size from the header first: a small file can declare a huge image (a decompression bomb).
    size = header_size(data, path, max_pixels)
    if size is None:  # OpenCV would decode it unbounded
        raise ImageReadError(f"{path} is not a decodable image (no header can be read: corrupt, truncated, or a "
                             f"format iqprior does not read)")
    _check_size(path, *size, max_pixels=max_pixels, min_side=min_side)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # OpenCV's own limits and decoder failures
        raise ImageReadError(f"{path} cannot be decoded: {_cv2_reason(e)}") from None
    if img is None:
        raise ImageReadError(f"{path} is not a decodable image (corrupt or truncated, or an unsupported format)")
    h, w = img.shape[:2]
    _check_size(path, w, h, max_pixels=max_pixels, min_side=min_side)
    return to_rgb_float(img, path)


def _cv2_reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    lines = [t for t in text if "error:" in t] or text or [type(e).__name__]
    return lines[0].split("error:", 1)[-1].strip()[:200]


def _check_size(path: Path, w: int, h: int, max_pixels: int, min_side: int) -> None:
    if h * w > max_pixels:
        raise ImageReadError(f"{path} is {w}x{h} = {h * w / 1e6:.0f} MP, above the {max_pixels / 1e6:.0f} MP limit")
    if min(h, w) < min_side:
        raise ImageReadError(f"{path} is {w}x{h}, smaller than {min_side} px on a side")


def to_rgb_float(img: np.ndarray, source: str | os.PathLike = "image") -> np.ndarray:
    """OpenCV-decoded array (BGR/BGRA/gray, uint8/uint16/float) -> RGB float32 [0, 1]."""
    if img.dtype == np.uint8:
        x = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        x = img.astype(np.float32) / 65535.0
    elif img.dtype in (np.float32, np.float64):
        x = img.astype(np.float32)
        if not np.isfinite(x).all():
            n = int((~np.isfinite(x)).sum())
            raise ImageReadError(f"{source} has {n} NaN/Inf pixel value(s); fix or drop the file")
        if x.max() > 1.0 or x.min() < 0.0:  # HDR / unnormalised float: scale to the range
            lo, hi = float(x.min()), float(x.max())
            x = (x - lo) / max(hi - lo, 1e-12)
    else:
        raise ImageReadError(f"{source}: unsupported pixel type {img.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]
    c = x.shape[2]
    if c == 1:
        x = np.repeat(x, 3, axis=2)
    elif c == 2:  # gray + alpha
        gray, alpha = x[:, :, :1], x[:, :, 1:2]
        x = np.repeat(gray * alpha + (1.0 - alpha), 3, axis=2)
    elif c == 4:  # BGRA: composite on white
        alpha = x[:, :, 3:4]
        x = x[:, :, :3] * alpha + (1.0 - alpha)
    elif c != 3:
        raise ImageReadError(f"{source}: unsupported channel count {c}")
    return np.ascontiguousarray(x[:, :, ::-1])  # BGR -> RGB


def read_image(path: str | os.PathLike, **kwargs) -> torch.Tensor:
    """Decode ``path`` to a ``(3, H, W)`` float32 RGB tensor in [0, 1] (see :func:`read_image_array`)."""
    return torch.from_numpy(read_image_array(path, **kwargs)).permute(2, 0, 1).contiguous()


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` RGB in [0, 1] (clamped here) -> ``(H, W, 3)`` uint8 BGR for OpenCV."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    check_finite(x, "image to write")
    arr = (x.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(arr[:, :, ::-1])


def write_image(path: str | os.PathLike, x: torch.Tensor | np.ndarray) -> Path:
    """Write an RGB ``(3, H, W)`` tensor in [0, 1] (clamped) or a BGR uint8 array, atomically."""
    import cv2

    path = Path(path)
    arr = tensor_to_uint8(x) if isinstance(x, torch.Tensor) else x
    ok, enc = cv2.imencode(path.suffix or ".png", arr)
    if not ok:
        raise ValueError(f"cannot encode an image as {path.suffix!r}")
    atomic_write_bytes(path, enc.tobytes())
    return path


MAX_TMP_STEM = 255 - len(".") - len(".0123456789ab.tmp")  # bytes of the destination name kept in the temp name


def _create_private_tmp(directory: Path, name: str) -> Path:
    """A new empty file beside ``name`` (O_EXCL, no symlink followed), mode 0o666 less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    # the name is cut so that ".<name>.<12 hex>.tmp" stays within the 255-byte limit of a file name
    stem = name.encode("utf-8", "surrogateescape")[:MAX_TMP_STEM].decode("utf-8", "ignore")
    for _ in range(100):
        tmp = directory / f".{stem}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, flags, 0o666))  # the kernel applies the umask: no os.umask() race
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file is created exclusively (never through a symlink) with the
    usual permissions (0o666 less the umask, which is never changed); a replaced
    regular file keeps its own mode, so a private file stays private. A symlink
    at ``path`` is replaced by the new file, never written through. The file is
    fsynced before the rename and its directory after it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_private_tmp(path.parent, path.name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            old = os.lstat(path)
        except FileNotFoundError:
            old = None
        if old is not None and stat.S_ISREG(old.st_mode):
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
        os.replace(tmp, path)
        fsync_directory(path.parent)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a partial one."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
