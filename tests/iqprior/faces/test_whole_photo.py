"""Whole real photos: detect (MTCNN, offline), align to FFHQ 512, restore, paste back with the square mask."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from iqprior.data import photos
from iqprior.faces.restorer import Restorer


class _Invert(torch.nn.Module):
    """An image model that inverts colours: where it was pasted back shows in the output."""

    task, native_size = "image", None

    def forward(self, x, score=None):
        return 1 - x


class _Upscale2(torch.nn.Module):
    """An image model with scale 2 (nearest): it must receive the crop at 256 and give 512 back."""

    task, native_size, scale = "image", None, 2

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, score=None):
        self.seen.append(tuple(x.shape[-2:]))
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_faces_of_a_real_photo_are_pasted_where_they_are(mtcnn_env, marked_eyes, one_thread):
    image = photos.load("astronaut")
    r = Restorer(_Invert(), faces=True, batch_size=1)
    assert r.task == "face"
    (out, n), = r.restore([image], 9)
    assert n == 1 and out.shape == image.shape
    for x, y in marked_eyes["astronaut"]:  # inside the face: inverted (7x7 means: warping twice blurs a little)
        patch = (slice(None), slice(int(y) - 3, int(y) + 4), slice(int(x) - 3, int(x) + 4))
        assert torch.allclose(out[patch].mean((1, 2)), 1 - image[patch].mean((1, 2)), atol=0.05)
    # far from the face (the square mask's feathered edge lies well inside the crop): untouched
    assert torch.equal(out[:, 400:, :60], image[:, 400:, :60]) and torch.equal(out[:, :40, 440:], image[:, :40, 440:])
    changed = (out - image).abs().amax(0) > 0.02
    ys, xs = np.nonzero(changed.numpy())
    assert 150 < xs.mean() < 280 and 60 < ys.mean() < 200  # the changed region is centred on the face


def test_a_scaled_image_model_gets_the_crop_at_its_input_size(mtcnn_env, one_thread):
    model = _Upscale2()
    (out, n), = Restorer(model, faces=True).restore([photos.load("astronaut")], 9)
    assert n == 1 and model.seen == [(256, 256)]
    assert out.shape == (3, 512, 512)


def test_no_face_is_copied_through(mtcnn_env, one_thread):
    image = photos.load("chelsea")  # a cat: MTCNN finds no human face
    (out, n), = Restorer(_Invert(), faces=True).restore([image], 9)
    assert n == 0 and torch.equal(out, image)


def test_restore_command_on_a_real_portrait(mtcnn_env, tmp_path, capsys, one_thread):
    from iqprior.cli import main
    from iqprior.demo.service import BUNDLED_CHECKPOINT
    from iqprior.io import read_image

    try:
        src = photos.path("grace_hopper")
    except photos.PhotoUnavailableError:
        src = photos.path("astronaut")
    out = tmp_path / "out"
    rc = main(["restore", str(src), "--model", "minires+", "--checkpoint", str(BUNDLED_CHECKPOINT), "--faces",
               "--out", str(out), "--no-progress", "--threads", "1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "MTCNN" in err and "0 without a face" in err and "restored 1 image(s)" in err
    result, before = read_image(out / f"{src.stem}.png"), read_image(src)
    assert result.shape == before.shape
    assert 0 < (result - before).abs().mean() < 0.1


def test_unknown_detector_is_an_error():
    from iqprior.faces.detectors import choose_detector

    with pytest.raises(ValueError, match="unknown face detector"):
        choose_detector("haar")
