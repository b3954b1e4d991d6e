"""The ``blockiness`` member (JPEG 8x8 blocking, boundary-to-interior ratio), ours and weightless."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from iqprior.scoring.blockiness import Blockiness


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    from PIL import Image
    a = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    b = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(b).permute(2, 0, 1)[None]


@pytest.fixture
def clean(face_paths):
    from iqprior.io import read_image
    x = read_image(face_paths[0])[None]
    return torch.nn.functional.interpolate(x, size=(128, 128), mode="area").clamp(0, 1)


def test_blockiness_rises_with_jpeg_and_ignores_contrast_and_grid_offset(clean):
    m = Blockiness()
    scores = [float(m(_jpeg(clean, q) if q else clean)) for q in (0, 90, 40, 10)]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 0.5
    assert 0.9 < scores[0] < 1.3                                  # no blocks: boundaries like the interior
    j = _jpeg(clean, 10)
    assert float(m(0.5 + 0.3 * (j - 0.5))) == pytest.approx(scores[-1], rel=1e-4)
    assert float(m(j[..., 3:, 5:])) == pytest.approx(scores[-1], rel=0.15)   # cropped JPEG: phase found


def test_blockiness_is_a_member_with_gradients(clean, check_weightless_member):
    check_weightless_member("blockiness", clean, _jpeg(clean, 10))
    with pytest.raises(ValueError):
        Blockiness(block=1)
    with pytest.raises(ValueError, match="at least"):
        m = Blockiness()
        m(torch.rand(1, 3, 8, 64))
