"""The ``blur_effect`` member (Crété-Roffet et al. 2007), ours and weightless."""
from __future__ import annotations

import pytest
import torch

from iqprior.scoring.sharpness import BlurEffect


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma) + 1
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x)
    x = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)


@pytest.fixture
def sharp(face_paths):
    from iqprior.io import read_image
    x = read_image(face_paths[0])[None]
    return torch.nn.functional.interpolate(x, size=(128, 128), mode="area")


def test_blur_effect_rises_with_blur_and_ignores_contrast(sharp):
    m = BlurEffect()
    scores = [float(m(_blur(sharp, s) if s else sharp)) for s in (0, 1.0, 2.0, 4.0)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores) and scores[-1] - scores[0] > 0.2
    low_contrast = 0.5 + 0.3 * (sharp - 0.5)
    assert float(m(low_contrast)) == pytest.approx(scores[0], abs=1e-4)
    assert float(m(torch.full((1, 3, 16, 16), 0.4))) == 1.0      # no variation at all: fully blurred


def test_blur_effect_is_a_member_with_gradients(sharp, check_weightless_member):
    check_weightless_member("blur_effect", sharp, _blur(sharp, 2.0))
    with pytest.raises(ValueError):
        BlurEffect(window=1)
