"""UIQM and UCIQE (iqprior.scoring.underwater) on inputs with known values."""
from __future__ import annotations

import math

import pytest
import torch

from iqprior.io import read_image
from iqprior.scoring.underwater import UCIQE, UIQM, UIQMConfig, rgb_to_lab

# FUnIE-GAN's Evaluation/uqim_utils.py (the common Python UIQM port, py3 int() fix) on the bundled
# 625_img_.png read as uint8, and the MATLAB UCIQE.m formula with exact (skimage) CIELab and MATLAB's
# 65536-bin stretchlim, both computed outside the repo. Our UIQM with the port's constants must match.
PORT_UIQM_625 = 3.050455
MATLAB_UCIQE_625 = 0.442175
PORT_CONFIG = UIQMConfig(lambdas=(0.299, 0.587, 0.144), port_trim=True)


def _constant(rgb, h=40, w=50):
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, h, w).clone()


def _srgb_lightness(v: float) -> float:
    lin = ((v + 0.055) / 1.055) ** 2.4 if v > 0.04045 else v / 12.92
    fy = lin ** (1 / 3) if lin > (6 / 29) ** 3 else lin / (3 * (6 / 29) ** 2) + 4 / 29
    return 116 * fy - 16


def test_gray_image_uiqm_is_zero():
    parts = UIQM().components(_constant([0.5, 0.5, 0.5]))
    for name, v in parts.items():
        assert v.abs().item() < 1e-9, name
    assert UIQM()(_constant([0.5, 0.5, 0.5])).item() == pytest.approx(0.0, abs=1e-9)


def test_constant_colour_uiqm_by_hand():
    r, g, b = 0.2, 0.5, 0.8
    rg, yb = 255 * (r - g), 255 * ((r + g) / 2 - b)
    uicm = -0.0268 * math.hypot(rg, yb)                    # no spread: the variance term is 0
    ratio = (b - r) / (b + r)                              # every block: max 0.8, min 0.2 over channels
    uiconm = -ratio * math.log(ratio)
    expected = 0.0282 * uicm + 0.2953 * 0.0 + 3.5753 * uiconm
    x = _constant([r, g, b])
    parts = UIQM().components(x)
    assert parts["uicm"].item() == pytest.approx(uicm, rel=1e-5)
    assert parts["uism"].item() == pytest.approx(0.0, abs=1e-9)
    assert parts["uiconm"].item() == pytest.approx(uiconm, rel=1e-6)
    assert UIQM()(x).item() == pytest.approx(expected, rel=1e-5)


def test_uicm_trimmed_mean_by_hand():
    # R - G takes values 0..99 (/255), G = B: RG = k, YB = k/2 on the 0..255 scale.
    k = torch.arange(100, dtype=torch.float64)
    x = torch.zeros(1, 3, 10, 10, dtype=torch.float64)
    x[0, 0] = (k / 255).view(10, 10)
    kept = k[10:90]                                        # ceil(0.1 K) dropped low, floor(0.1 K) high
    mu_rg, mu_yb = kept.mean().item(), kept.mean().item() / 2
    var_rg = ((k - mu_rg) ** 2).mean().item()
    var_yb = ((k / 2 - mu_yb) ** 2).mean().item()
    expected = -0.0268 * math.hypot(mu_rg, mu_yb) + 0.1586 * math.sqrt(var_rg + var_yb)
    assert UIQM().components(x)["uicm"].item() == pytest.approx(expected, rel=1e-9)


def test_uism_step_edge_by_hand():
    # One vertical step 0.25 | 0.75 in a single 10x10 block per channel: EME = 2 * log(max/min) of
    # the edge map |sobel| * channel; only the two columns at the step have edges (4*0.5 = 2 each side).
    x = torch.full((1, 3, 10, 10), 0.25, dtype=torch.float64)
    x[..., 5:] = 0.75
    # edges exist only in columns 4 and 5; other pixels have zero gradient -> block min 0 -> adds 0
    assert UIQM().components(x)["uism"].item() == pytest.approx(0.0, abs=1e-12)
    # with the block restricted to the two edge columns, min and max are 2*0.25 and 2*0.75
    two = x[..., 4:6].contiguous()
    expected = 2 * math.log(0.75 / 0.25) * (0.299 + 0.587 + 0.114)
    assert UIQM(UIQMConfig(window=2)).components(two)["uism"].item() == pytest.approx(expected, rel=1e-9)


def test_gray_image_uciqe_by_hand():
    v = 0.5
    lum = _srgb_lightness(v) / 100                          # L * 255/100 / 255
    chroma = math.hypot(128 / 255, 128 / 255)               # a* = b* = 0 in the offset 8-bit encoding
    expected = 0.2576 * chroma / math.hypot(chroma, lum)    # sigma_c = 0, con_l = 0 (flat)
    parts = UCIQE().components(_constant([v, v, v]))
    assert parts["sigma_c"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["con_l"].item() == pytest.approx(0.0, abs=1e-12)
    assert UCIQE()(_constant([v, v, v])).item() == pytest.approx(expected, abs=2e-5)


def test_lab_known_colours():
    x = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 3, 1).double()
    lab = rgb_to_lab(x)[0, :, :, 0].T
    assert lab[0].tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-2)        # white
    assert lab[1].tolist() == pytest.approx([53.24, 80.09, 67.20], abs=2e-2)    # sRGB red (D65)
    assert lab[2].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_sample_matches_reference_ports(underwater_paths):
    x = read_image(underwater_paths[1])[None]              # 625_img_.png
    assert underwater_paths[1].name == "625_img_.png"
    assert UIQM(PORT_CONFIG)(x).item() == pytest.approx(PORT_UIQM_625, abs=1e-5)
    assert UCIQE()(x).item() == pytest.approx(MATLAB_UCIQE_625, abs=1e-5)
    # the paper's lambda_B (0.114) instead of the port's 0.144 lowers UISM's blue share
    assert UIQM()(x).item() < PORT_UIQM_625


def test_batch_shape_independence_and_gradients(underwater_paths):
    a = read_image(underwater_paths[1])[None][..., :64, :80]
    b = torch.rand(1, 3, 64, 80)
    batch = torch.cat([a, b]).requires_grad_(True)
    for metric in (UIQM(), UCIQE()):
        out = metric(batch)
        assert out.shape == (2,) and out.dtype == torch.float32
        assert out[0].item() == pytest.approx(metric(a).item(), rel=1e-6)
        assert out[1].item() == pytest.approx(metric(b).item(), rel=1e-6)
        (grad,) = torch.autograd.grad(out.sum(), batch)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_more_colour_and_contrast_scores_higher(underwater_paths):
    x = read_image(underwater_paths[1])[None]
    washed = 0.5 + 0.2 * (x - 0.5)                         # lower contrast and chroma
    for metric in (UIQM(), UCIQE()):
        assert metric(x).item() > metric(washed).item()


@pytest.mark.parametrize("size", [(8, 8), (9, 13), (17, 23)])
def test_tiny_images(size):
    x = torch.rand(2, 3, *size)
    for metric in (UIQM(), UCIQE()):
        out = metric(x)
        assert out.shape == (2,) and torch.isfinite(out).all()


def test_bad_input():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        UIQM()(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="float"):
        UCIQE()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="UIQMConfig"):
        UIQM(config={"window": 10})
