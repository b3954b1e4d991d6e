"""Every image decode is bounded before pixels are allocated, and every decoder error is an ImageReadError."""
import struct

import numpy as np
import pytest

from iqprior import io as iio
from iqprior.image_header import header_size
from iqprior.io import ImageReadError, read_image_array


def _hdr(w, h, body=b"\x02\x02\x00\x10" * 8):
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {h} +X {w}\n".encode() + body


def _pfm(w, h, color=True):
    return (b"PF\n" if color else b"Pf\n") + f"{w} {h}\n-1.0\n".encode() + b"\0" * 64


def _tiff_float(w, h):
    """A little-endian TIFF header declaring a w x h float32 RGB image (no pixel data)."""
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 32), (277, 3, 1, 3), (339, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    return b"II*\x00" + struct.pack("<I", 8) + ifd


@pytest.mark.parametrize("make", [_hdr, _pfm, _tiff_float])
def test_header_read_by_the_formats_own_parser(make):
    assert header_size(make(300, 200)) == (300, 200)


@pytest.mark.parametrize("make", [_hdr, _pfm, _tiff_float])
def test_huge_declared_image_is_an_image_error(tmp_path, make):
    p = tmp_path / "bomb.png"  # OpenCV detects the format by content, whatever the extension
    p.write_bytes(make(2_000_000, 2_000_000))
    with pytest.raises(ImageReadError, match="limit"):
        read_image_array(p)


@pytest.mark.parametrize("make", [_hdr, _pfm])
def test_over_cap_header_never_reaches_the_decoder(tmp_path, monkeypatch, make):
    import cv2

    calls = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: calls.append(1))
    p = tmp_path / "big.hdr"
    p.write_bytes(make(200, 200))
    with pytest.raises(ImageReadError, match="limit"):
        read_image_array(p, max_pixels=10_000)
    assert calls == []


def test_unreadable_header_is_refused_before_decoding(tmp_path, monkeypatch):
    import cv2

    calls = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: calls.append(1))
    p = tmp_path / "x.png"
    p.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ImageReadError, match="header"):
        read_image_array(p)
    assert calls == []


def test_decoder_error_becomes_image_error(tmp_path, monkeypatch):
    import cv2

    def boom(*a, **k):
        raise cv2.error("OpenCV(5) loadsave.cpp: error: (-215:Assertion failed) something")

    monkeypatch.setattr(cv2, "imdecode", boom)
    p = tmp_path / "ok.png"
    cv2.imwrite(str(p), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ImageReadError, match="ok.png"):
        read_image_array(p)


def test_small_hdr_and_pfm_still_decode(tmp_path):
    import cv2

    img = np.random.default_rng(0).random((12, 20, 3)).astype(np.float32)
    for ext in (".hdr", ".pfm"):
        ok, enc = cv2.imencode(ext, img)
        assert ok
        p = tmp_path / f"small{ext}"
        p.write_bytes(enc.tobytes())
        assert header_size(enc.tobytes()) == (20, 12)
        out = read_image_array(p)
        assert out.shape == (12, 20, 3) and np.isfinite(out).all()


def test_opencv_pixel_cap_is_set_before_cv2_is_imported():
    import os
    import subprocess
    import sys

    code = ("import os; os.environ.pop('OPENCV_IO_MAX_IMAGE_PIXELS', None); import iqprior; "
            "print(os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout.strip()) == iio.MAX_PIXELS


def test_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    p = tmp_path / "huge.png"
    with open(p, "wb") as f:
        f.truncate(5000)  # sparse
    monkeypatch.setattr(iio, "MAX_FILE_BYTES", 4096)
    monkeypatch.setattr(type(p), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(ImageReadError, match="GiB"):
        read_image_array(p)
