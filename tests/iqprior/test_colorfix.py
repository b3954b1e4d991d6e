"""``--color-fix``: AdaIN matches channel statistics, the wavelet fix takes the input's low frequencies."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from iqprior.colorfix import ColorFixed, adain_canvas, adain_fix, check_color_fix, low_pass, wavelet_fix


def test_adain_matches_statistics():
    x = torch.rand(1, 3, 32, 40)
    y = torch.rand(1, 3, 64, 80) * 0.5 + 0.3
    z = adain_fix(y, x)
    assert torch.allclose(z.mean((2, 3)), x.mean((2, 3)), atol=1e-5)
    assert torch.allclose(z.std((2, 3)), x.std((2, 3)), atol=1e-4)


def test_wavelet_keeps_detail_and_takes_input_colour():
    x = torch.rand(1, 3, 64, 64)
    shifted = x + torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1)  # a colour cast, same detail
    z = wavelet_fix(shifted, x)
    assert torch.allclose(z, x, atol=1e-5)  # the cast is low frequency: fully removed
    assert torch.allclose(low_pass(torch.full((1, 3, 20, 20), 0.4)), torch.full((1, 3, 20, 20), 0.4))


def test_adain_canvas_equals_float_adain():
    rng = np.random.default_rng(0)
    img = (rng.random((50, 60, 3)) * 255).astype(np.uint8)
    out = np.clip(img.astype(int) * 0.7 + 40, 0, 255).astype(np.uint8)
    expect = adain_fix(torch.from_numpy(out).permute(2, 0, 1)[None].float(),
                       torch.from_numpy(img).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    got = adain_canvas(out.copy(), img, rows=7)
    assert np.abs(got.astype(float) - np.clip(expect, 0, 255)).max() <= 1.0


def test_wrapper_and_names():
    model = lambda x, score=None: x * 0.5  # noqa: E731
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(ColorFixed(model, "adain")(x).mean(), x.mean(), atol=1e-5)
    assert torch.equal(ColorFixed(model, "none")(x), x * 0.5)
    with pytest.raises(ValueError, match="--color-fix"):
        check_color_fix("lab")
