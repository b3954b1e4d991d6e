"""NaN/Inf in a restored face is an error before any uint8 conversion, never a black face written."""
import pytest
import torch

from iqprior.faces import FacePipeline
from iqprior.faces.restorer import Restorer
from iqprior.io import NonFiniteError, read_image

from .test_faces import _place_face


@pytest.fixture(scope="module")
def placed(face_paths_module):
    face = read_image(face_paths_module[0])
    return _place_face(face)


@pytest.fixture(scope="module")
def face_paths_module():
    from pathlib import Path
    return sorted((Path(__file__).resolve().parents[3] / "examples" / "data" / "faces").glob("*.png"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_whole_photo_restore_refuses_non_finite_faces(placed, bad):
    whole, landmarks, _ = placed
    pipe = FacePipeline(load_models=False)

    def broken(faces):
        out = faces.clone()
        out[:, :, 200:220, 200:220] = bad
        return out

    with pytest.raises(NonFiniteError, match="restored face"):
        pipe.restore(whole, broken, landmarks=[landmarks])


def test_paste_refuses_non_finite_faces(placed):
    whole, landmarks, _ = placed
    pipe = FacePipeline(load_models=False)
    crops = pipe.crop(whole, [landmarks])
    with pytest.raises(NonFiniteError):
        pipe.paste(crops, torch.full_like(crops.faces, float("nan")))


def test_sweep_of_a_whole_photo_refuses_non_finite_faces(placed):
    whole, landmarks, _ = placed

    class NaNModel(torch.nn.Module):
        task, is_conditioned, native_size = "face", True, 512

        def forward(self, x, score=None):
            return torch.full_like(x, float("nan"))

    r = Restorer(NaNModel(), "cpu", batch_size=1, aligned=False)
    r._pipeline = FacePipeline(load_models=False)
    crops = r._pipeline.crop(whole, [landmarks])
    with pytest.raises(NonFiniteError):
        r._pipeline.paste(crops, r.run_faces(crops.faces, 3))
