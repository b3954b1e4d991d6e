"""The offline scorer on real photographs (iqprior.data.photos): each scores above its blurred and noisy copies."""
from __future__ import annotations

import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from iqprior.data import photos


@pytest.fixture(scope="module")
def scorer():
    from iqprior.scoring.ensemble import create_scorer

    return create_scorer("offline", device="cpu")


@pytest.mark.parametrize("name", list(photos.PHOTOS))
def test_real_photo_beats_its_degraded_copies(scorer, name, one_thread):
    try:
        x = photos.load(name)[None]
    except photos.PhotoUnavailableError as e:
        pytest.skip(str(e))
    g = torch.Generator().manual_seed(0)
    blurred = gaussian_blur(x, 13, 3.0)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        clean, b, n = (scorer(y).item() for y in (x, blurred, noisy))
    # measured (offline = NIQE + BRISQUE, documented ranges): clean 0.45-0.90 (clock_motion: real motion blur),
    # blurred 0.20-0.37, noisy 0.19-0.42
    assert clean > b + 0.1 and clean > n + 0.05, (clean, b, n)
