"""Fuzz the image header reader and the decoder entry: a size, or one ImageReadError, always bounded."""
from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from iqprior.image_header import header_size
from iqprior.io import ImageReadError, read_image_array

FUZZ = settings.get_profile("iqprior-fuzz")
CAP = 4_000_000  # pixels: every decode in these tests stays small

MAGICS = [b"#?RADIANCE\n", b"#?RGBE\n", b"PF\n", b"Pf\n", b"II*\x00", b"MM\x00*", b"II+\x00", b"\x89PNG\r\n\x1a\n",
          b"\xff\xd8\xff", b"BM", b"RIFF", b"P6\n", b"GIF89a", b"\x00\x00\x00\x0cjP  ", b"\x59\xa6\x6a\x95"]


def _hdr(w, h, sep):
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"{sep[0]}Y {h} {sep[1]}X {w}\n".encode()


def _tiff(w, h, order, typ):
    fmt = {3: "H", 4: "I"}[typ]
    entries = b"".join(struct.pack(order + "HHI", tag, typ, 1) + struct.pack(order + fmt, v).ljust(4, b"\0")
                       for tag, v in ((256, w), (257, h)))
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    return magic + struct.pack(order + "I", 8) + struct.pack(order + "H", 2) + entries + b"\0" * 4


def _tiff_tags(pairs, order):
    """A TIFF whose first directory holds ``pairs`` of (tag, value) LONG entries as given: repeated
    ImageWidth/ImageLength tags (libtiff keeps the first, other readers the last) must be refused (issue 33)."""
    entries = b"".join(struct.pack(order + "HHII", tag, 4, 1, v) for tag, v in pairs)
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    return magic + struct.pack(order + "I", 8) + struct.pack(order + "H", len(pairs)) + entries + b"\0" * 4


sizes = st.integers(0, 2**31 - 1)
headers = st.one_of(
    st.builds(_hdr, sizes, sizes, st.sampled_from([("-", "+"), ("+", "+"), ("-", "-")])),
    st.builds(lambda w, h, c: (c + f"{w} {h}\n-1.0\n".encode()), sizes, sizes, st.sampled_from([b"PF\n", b"Pf\n"])),
    st.builds(lambda w, h, o: _tiff(w % 65536, h % 65536, o, 3), sizes, sizes, st.sampled_from(["<", ">"])),
    st.builds(lambda w, h, o: _tiff(w, h, o, 4), sizes, sizes, st.sampled_from(["<", ">"])),
    st.builds(_tiff_tags, st.lists(st.tuples(st.sampled_from([256, 257, 258, 259, 273]), st.integers(0, 2**32 - 1)),
                                   min_size=1, max_size=6), st.sampled_from(["<", ">"])),
)
blobs = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda m, b: m + b, st.sampled_from(MAGICS), st.binary(max_size=512)),
    st.builds(lambda h, b: h + b, headers, st.binary(max_size=256)),
)


@FUZZ
@given(blobs)
def test_header_size_is_a_size_or_none(bounded, data):
    with bounded("header_size"):
        try:
            size = header_size(data, "fuzz", CAP)
        except ImageReadError:
            return
    assert size is None or (isinstance(size, tuple) and len(size) == 2 and all(
        isinstance(v, int) and v >= 0 for v in size))


@FUZZ
@given(blobs)
def test_decode_is_an_image_or_one_image_error(bounded, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "x.png"
    path.write_bytes(data)
    with bounded("read_image_array"):
        try:
            img = read_image_array(path, max_pixels=CAP)
        except ImageReadError as e:
            assert "\n" not in str(e).strip() and not any(w in str(e).lower() for w in ("memory", "allocate")), repr(e)
            return
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] * img.shape[1] <= CAP and np.isfinite(img).all()


@FUZZ
@given(st.integers(8, 64), st.integers(8, 64), st.sampled_from([".png", ".hdr", ".pfm", ".tiff", ".bmp"]),
       st.data())
def test_mutated_real_images(bounded, tmp_path_factory, w, h, ext, data):
    """Real encodings with bytes flipped or cut: a (capped) image or one ImageReadError."""
    import cv2

    img = np.random.default_rng(w * h).random((h, w, 3)).astype(np.float32)
    ok, enc = cv2.imencode(ext, img if ext in (".hdr", ".pfm", ".tiff") else (img * 255).astype(np.uint8))
    assert ok
    buf = bytearray(enc.tobytes())
    for _ in range(data.draw(st.integers(0, 8))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    buf = buf[:data.draw(st.integers(1, len(buf)))]
    path = tmp_path_factory.mktemp("fuzz") / f"x{ext}"
    path.write_bytes(bytes(buf))
    with bounded("read_image_array"):
        try:
            out = read_image_array(path, max_pixels=CAP)
        except ImageReadError:
            return
    assert out.shape[0] * out.shape[1] <= CAP


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([256, 257, 258]), st.integers(1, 2**32 - 1)), min_size=2, max_size=6),
       st.sampled_from(["<", ">"]))
def test_repeated_tiff_size_tags_are_refused(bounded, pairs, order):
    tags = [t for t, _ in pairs]
    with bounded("header_size"):
        try:
            size = header_size(_tiff_tags(pairs, order), "fuzz", CAP)
        except ImageReadError as e:
            assert "twice" in str(e) or "limit" in str(e), repr(e)
            return
    assert tags.count(256) <= 1 and tags.count(257) <= 1, f"{pairs}: read as {size}"
