"""An image's size read from its header, before any pixel is decoded.

OpenCV recognises a file by its content, whatever its extension, so a small
file can declare a huge image in any format OpenCV decodes. The formats PIL
does not parse are read here with their own header grammar:

- Radiance HDR (``#?RADIANCE`` / ``#?RGBE``): text lines up to a blank one, then
  the resolution line ``-Y <height> +X <width>`` (any axis order and sign);
- PFM (``PF`` colour, ``Pf`` gray): ``<width> <height>`` after the magic;
- TIFF and BigTIFF (``II``/``MM``): ``ImageWidth`` (256) and ``ImageLength``
  (257) of the first IFD, the page OpenCV decodes. A directory holding either
  tag twice is refused: libtiff keeps the first, other readers the last, so
  the size checked would not be the size decoded.

Everything else goes to PIL, which reads the header lazily (no pixels).
:func:`header_size` returns ``None`` when no parser can read a header;
:func:`iqprior.io.read_image_array` then refuses the file instead of decoding it
unbounded. Each parser reads at most :data:`HEADER_BYTES` bytes and a bounded
number of TIFF entries, so a hostile header costs microseconds.
"""
from __future__ import annotations

import io
import os
import re
import struct
import warnings
from typing import Optional

__all__ = ["header_size", "HEADER_BYTES", "ImageReadError"]

HEADER_BYTES = 65536         # no header parsed here may be longer
MAX_TIFF_ENTRIES = 4096      # entries of the first IFD looked at
_TIFF_SIZE_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8 (BigTIFF)


class ImageReadError(ValueError):
    """An image file cannot be used; the message says why (re-exported by :mod:`iqprior.io`)."""


def _radiance(data: bytes) -> Optional[tuple[int, int]]:
    head = data[:HEADER_BYTES]
    end = head.find(b"\n\n")
    if end < 0:
        return None
    line = head[end + 2:].split(b"\n", 1)[0].decode("ascii", "replace")
    m = re.fullmatch(r"\s*([+-])([XY])\s+(\d{1,12})\s+([+-])([XY])\s+(\d{1,12})\s*", line)
    if m is None or m.group(2) == m.group(5):
        return None
    sizes = {m.group(2): int(m.group(3)), m.group(5): int(m.group(6))}
    return sizes["X"], sizes["Y"]


def _pfm(data: bytes) -> Optional[tuple[int, int]]:
    m = re.match(rb"P[Ff]\s+(\d{1,12})\s+(\d{1,12})\s", data[:256])
    return (int(m.group(1)), int(m.group(2))) if m else None


_TIFF_TAGS = {256: "ImageWidth", 257: "ImageLength"}


class _Ambiguous(ValueError):
    """A header that two decoders would read as two different sizes."""


def _tiff(data: bytes) -> Optional[tuple[int, int]]:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    version = struct.unpack(order + "H", data[2:4])[0]
    if version == 42:
        offset, count_fmt, entry_size, value_at = struct.unpack(order + "I", data[4:8])[0], "H", 12, 8
    elif version == 43:  # BigTIFF
        offset, count_fmt, entry_size, value_at = struct.unpack(order + "Q", data[8:16])[0], "Q", 20, 12
    else:
        return None
    count_size = struct.calcsize(count_fmt)
    if offset + count_size > len(data):
        return None
    count = min(struct.unpack(order + count_fmt, data[offset:offset + count_size])[0], MAX_TIFF_ENTRIES)
    found: dict[int, int] = {}
    for i in range(count):
        at = offset + count_size + i * entry_size
        entry = data[at:at + entry_size]
        if len(entry) < entry_size:
            break
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            if tag in found:  # libtiff keeps the first, other readers the last: ambiguous, refused
                raise _Ambiguous(f"its first TIFF directory has {_TIFF_TAGS[tag]} twice")
            if typ not in _TIFF_SIZE_TYPES:
                return None
            fmt = order + _TIFF_SIZE_TYPES[typ]
            found[tag] = struct.unpack(fmt, entry[value_at:value_at + struct.calcsize(fmt)])[0]
    if 256 in found and 257 in found:
        return int(found[256]), int(found[257])
    return None


def _pil(data: bytes, source: str | os.PathLike, max_pixels: int) -> Optional[tuple[int, int]]:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        declared = f"{int(m.group(1)) / 1e6:.0f} MP" if m else "a decompression bomb"
        raise ImageReadError(f"{source} declares {declared} in its header, above the {max_pixels / 1e6:.0f} MP "
                             f"limit") from None
    except Exception:  # a format PIL does not know, or a header it cannot parse
        return None


def header_size(data: bytes, source: str | os.PathLike = "image", max_pixels: int = 100_000_000
                ) -> Optional[tuple[int, int]]:
    """``(width, height)`` read from the header of encoded image ``data``; ``None`` when no parser reads it.

    The formats OpenCV knows by signature and PIL does not parse are read by
    their own grammar first; PIL reads the rest. PIL refuses headers above
    twice its ``Image.MAX_IMAGE_PIXELS`` as decompression bombs: that is an
    :class:`ImageReadError` naming the declared size.
    """
    if data[:2] == b"#?":
        return _radiance(data)
    if data[:3] in (b"PF\n", b"Pf\n", b"PF\r", b"Pf\r", b"PF ", b"Pf "):
        return _pfm(data)
    if data[:2] in (b"II", b"MM"):
        try:
            size = _tiff(data)
        except _Ambiguous as e:
            raise ImageReadError(f"{source}: {e} (decoders disagree on its size); refused") from None
        if size is not None:
            return size
    return _pil(data, source, max_pixels)
