"""Face pipeline: alignment and paste-back with landmarks supplied here (no detector weights)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from iqprior.faces import FFHQ_TEMPLATE_512, FacePipeline
from iqprior.faces.restorer import Restorer
from iqprior.io import read_image


def _place_face(face: torch.Tensor, size=(600, 700), angle=12.0, scale=0.6, offset=(150.0, 120.0)):
    """Warp an aligned 512 face into a bigger gray canvas with a known similarity transform."""
    m = cv2.getRotationMatrix2D((0, 0), angle, scale)
    m[:, 2] += offset
    arr = face.permute(1, 2, 0).numpy()
    canvas = cv2.warpAffine(arr, m, (size[1], size[0]), borderValue=(0.5, 0.5, 0.5))
    landmarks = FFHQ_TEMPLATE_512 @ m[:, :2].T + m[:, 2]
    return torch.from_numpy(canvas).permute(2, 0, 1).contiguous(), landmarks, m


@pytest.fixture
def pipe() -> FacePipeline:
    return FacePipeline(load_models=False)


def test_alignment_recovers_the_aligned_face(face_paths, pipe):
    face = read_image(face_paths[0])
    whole, landmarks, _ = _place_face(face)
    crops = pipe.crop(whole, [landmarks])
    assert crops.faces.shape == (1, 3, 512, 512)
    inner = (slice(None), slice(128, 384), slice(128, 384))
    err = (crops.faces[0][inner] - face[inner]).abs().mean().item()
    other = read_image(face_paths[1])
    err_other = (crops.faces[0][inner] - other[inner]).abs().mean().item()
    assert err < 0.03 and err_other > 3 * err
    # the estimated affine maps the given landmarks onto the template
    mapped = landmarks @ crops.affines[0][:, :2].T + crops.affines[0][:, 2]
    np.testing.assert_allclose(mapped, FFHQ_TEMPLATE_512, atol=0.5)


def test_paste_back_replaces_only_the_face_region(face_paths, pipe):
    face = read_image(face_paths[0])
    whole, landmarks, m = _place_face(face)
    crops = pipe.crop(whole, [landmarks])
    same = pipe.paste(crops, crops.faces)
    assert same.shape == whole.shape
    assert (same - whole).abs().mean() < 0.01          # identity restoration ~ the input
    white = pipe.paste(crops, torch.ones_like(crops.faces))
    centre = (FFHQ_TEMPLATE_512.mean(0) @ m[:, :2].T + m[:, 2]).round().astype(int)
    assert white[:, centre[1], centre[0]].min() > 0.97   # face centre replaced
    torch.testing.assert_close(white[:, :20, :20], whole[:, :20, :20], atol=1 / 255, rtol=0)  # far corner kept


def test_no_face_copies_the_image_through(pipe):
    img = torch.rand(3, 40, 50)
    out, n = pipe.restore(img, lambda f: f * 0, landmarks=[])
    assert n == 0 and torch.equal(out, img)


def test_bad_landmarks_and_missing_detector(pipe):
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        pipe.crop(torch.rand(3, 64, 64), [np.zeros((4, 2))])
    with pytest.raises(ValueError, match="landmarks"):
        pipe.detect(torch.rand(3, 64, 64))


def test_detector_weights_offline_give_a_clear_error():
    from iqprior.weights import WeightsUnavailableError
    with pytest.raises(WeightsUnavailableError, match="detection_Resnet50_Final.pth"):
        FacePipeline(detector="retinaface")
    # the default falls back to MTCNN when RetinaFace's weights are absent; offline without it: its name
    with pytest.raises(WeightsUnavailableError, match="mtcnn_facenet-pytorch-2.6.0.safetensors"):
        FacePipeline()


def test_restorer_whole_photo_batches_faces(face_paths, pipe):
    face = read_image(face_paths[0])
    whole, lm1, _ = _place_face(face)
    seen = []

    class Dummy(torch.nn.Module):
        task, native_size = "face", 512

        def forward(self, x, score=None):
            seen.append(x.shape[0])
            return 1 - x

    r = Restorer(Dummy(), batch_size=2, pipeline=pipe)
    out, n = r.pipeline.restore(whole, lambda f: r.run_faces(f, 9), landmarks=[lm1, lm1 + 5, lm1 - 5])
    assert n == 3 and seen == [2, 1] and out.shape == whole.shape


@pytest.mark.weights
def test_detection_with_weights(whole_paths):
    pipe = FacePipeline()
    assert len(pipe.detect(read_image(whole_paths[0]))) >= 1
