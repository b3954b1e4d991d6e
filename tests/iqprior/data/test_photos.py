"""iqprior.data.photos: the real-photo set, found in installed packages and written with its licences."""
from __future__ import annotations

import json

import pytest

from iqprior.data import photos


def test_bundled_photos_load_as_rgb():
    # scikit-image is a dependency: its bundled photos are always there
    for name in ("astronaut", "camera", "coffee", "chelsea", "rocket", "clock_motion"):
        img = photos.load(name)
        assert img.dim() == 3 and img.shape[0] == 3 and img.min() >= 0 and img.max() <= 1
        assert img.std() > 0.05  # a photograph, not a blank
    assert tuple(photos.load("astronaut").shape) == (3, 512, 512)


def test_every_photo_has_a_licence_and_credit():
    for p in photos.PHOTOS.values():
        assert p.licence and p.credit and ("public domain" in p.licence or "CC0" in p.licence)


def test_materialise_writes_files_licences_and_manifest(tmp_path, monkeypatch):
    missing = photos.Photo("gone", "debian:nothing", "/nonexistent/x.jpg", "CC0", "nobody", 0)
    monkeypatch.setitem(photos.PHOTOS, "gone", missing)
    files = photos.materialise(tmp_path / "set", ["astronaut", "coffee", "gone"])
    assert [f.name for f in files] == ["astronaut.png", "coffee.png"]
    assert files[0].read_bytes() == photos.path("astronaut").read_bytes()  # the package's bytes, unchanged
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert [e["file"] for e in manifest["photos"]] == ["astronaut.png", "coffee.png"] and manifest["missing"] == ["gone"]
    text = (tmp_path / "set" / "LICENSES.md").read_text()
    assert "astronaut.png" in text and "public domain" in text and "gone (debian:nothing)" in text
    # again: idempotent
    assert photos.materialise(tmp_path / "set", ["astronaut", "coffee", "gone"]) == files
    with pytest.raises(photos.PhotoUnavailableError, match="apt-get install nothing"):
        photos.materialise(tmp_path / "strict", ["gone"], strict=True)


def test_unknown_photo_and_command_line(tmp_path, capsys):
    with pytest.raises(KeyError, match="did you mean 'astronaut'"):
        photos.path("astronot")
    assert photos.main([str(tmp_path / "out"), "--only", "chelsea"]) == 0
    assert (tmp_path / "out" / "chelsea.png").is_file()
    assert photos.main([str(tmp_path / "out"), "--only", "nope"]) == 2
    assert "iqprior photos: error: no photo named 'nope'" in capsys.readouterr().err


def test_downscaled_copies_for_super_resolution(tmp_path):
    from iqprior.io import read_image

    files = photos.materialise(tmp_path, ["astronaut"], downscale=4)
    assert [f.name for f in files] == ["astronaut_x4down.png"]
    small, big = read_image(files[0]), photos.load("astronaut")
    assert small.shape == (3, 128, 128)
    assert (small - big.reshape(3, 128, 4, 128, 4).mean((2, 4))).abs().mean() < 0.03  # the same picture
    with pytest.raises(ValueError, match="whole number"):
        photos.materialise(tmp_path, ["astronaut"], downscale=0)
