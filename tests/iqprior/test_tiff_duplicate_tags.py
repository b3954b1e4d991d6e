"""TIFF size tags given twice are refused; cv2 imported before iqprior is said once (issue 33, item 8)."""
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from iqprior.io import ImageReadError, header_size, read_image_array


def duplicated_tiff(real: tuple[int, int], declared: tuple[int, int]) -> bytes:
    """A TIFF of ``real`` (w, h) pixels whose first directory also holds ImageWidth/ImageLength = ``declared``
    after the real ones (libtiff keeps the first)."""
    w, h = real
    ok, enc = cv2.imencode(".tiff", np.full((h, w), 128, np.uint8), [cv2.IMWRITE_TIFF_COMPRESSION, 8])
    data = bytearray(enc.tobytes())
    off = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[off:off + 2])[0]
    entries = bytes(data[off + 2: off + 2 + 12 * n])
    extra = struct.pack("<HHII", 256, 4, 1, declared[0]) + struct.pack("<HHII", 257, 4, 1, declared[1])
    at = len(data) + len(data) % 2
    data += b"\0" * (at - len(data)) + struct.pack("<H", n + 2) + entries + extra + b"\0" * 4
    data[4:8] = struct.pack("<I", at)
    return bytes(data)


def test_duplicate_size_tags_are_refused_by_the_header_check(tmp_path):
    data = duplicated_tiff((200, 200), (16, 16))
    with pytest.raises(ImageReadError, match="twice"):
        header_size(data, "x.tiff")
    path = tmp_path / "x.tiff"
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match="twice"):
        read_image_array(path, max_pixels=1000)  # 16x16 declared last, 200x200 decoded: never decoded


def test_a_plain_tiff_still_reads(tmp_path):
    ok, enc = cv2.imencode(".tiff", np.zeros((20, 30, 3), np.uint8))
    assert header_size(enc.tobytes()) == (30, 20)


def test_cv2_imported_first_is_said_once(tmp_path):
    ok, enc = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "a.png").write_bytes(enc.tobytes())
    code = ("import warnings, cv2\nwarnings.simplefilter('always')\nimport iqprior.io as io\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            f"    io.read_image_array({str(tmp_path / 'a.png')!r}); io.read_image_array({str(tmp_path / 'a.png')!r})\n"
            "print(sum('imported before iqprior' in str(x.message) for x in w))")
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "1", out.stdout + out.stderr
