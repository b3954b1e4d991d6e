"""Full-reference metrics (PSNR, SSIM, LPIPS) from the one metric table, ``iqprior.scoring.specs.SPECS``."""
import re

import pytest
import torch

from iqprior.scoring import SPECS, build_fullref, build_member, create_scorer, fullref_available


def test_table_marks_full_reference_metrics():
    fr = sorted(n for n, s in SPECS.items() if s.full_reference)
    assert fr == ["lpips", "psnr", "ssim"]
    assert SPECS["lpips"].lower_better and not SPECS["psnr"].lower_better and not SPECS["ssim"].lower_better
    assert [w.load for w in SPECS["lpips"].weights] == [False, True]  # torchvision loads the trunk, we the layers


def test_full_reference_metrics_are_no_members():
    with pytest.raises(ValueError, match="full-reference"):
        build_member("psnr")
    with pytest.raises(ValueError, match="full-reference"):
        create_scorer(members=["ssim"])
    with pytest.raises(ValueError, match="no-reference"):
        build_fullref("piqe")


def test_psnr_and_ssim_against_ground_truth():
    torch.manual_seed(0)
    gt = torch.rand(2, 3, 32, 32)
    near = (gt + 0.01 * torch.randn_like(gt)).clamp(0, 1)
    far = (gt + 0.2 * torch.randn_like(gt)).clamp(0, 1)
    assert fullref_available("psnr") == (True, "")
    psnr, ssim = build_fullref("psnr"), build_fullref(SPECS["ssim"])
    p_near, p_far = psnr(near, gt), psnr(far, gt)
    assert p_near.shape == (2,) and (p_near > p_far).all()
    # PSNR of Gaussian noise with std 0.01 on [0, 1]: about 40 dB (clamping removes a little noise)
    assert 39.0 < float(p_near.mean()) < 42.0
    assert torch.allclose(ssim(gt, gt), torch.ones(2), atol=1e-4) and (ssim(far, gt) < 0.9).all()
    with pytest.raises(ValueError, match="ground truth"):
        psnr(near)


def test_lpips_loads_its_files_with_weights_only(tmp_path, monkeypatch):
    """LPIPS is built without pyiqa's own (weights_only=False) load; our strict load uses the files on disk."""
    import pyiqa.utils.download_util as du
    import torchvision

    lpips = SPECS["lpips"]
    # the files below are stand-ins under the real (hash-prefixed) names: skip only the name-hash check here
    monkeypatch.setattr("iqprior.file_hash.HUB_HASH", re.compile(r"(?!)"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(du, "DEFAULT_CACHE_DIR", str(tmp_path / "pyiqa"))
    ok, why = fullref_available(lpips)
    assert not ok and "alexnet-owt-7be5be79.pth" in why and "LPIPS_v0.1_alex" in why
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(),
               tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate([64, 192, 384, 256, 256])}
    (tmp_path / "pyiqa").mkdir()
    torch.save(lins, tmp_path / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth")
    assert fullref_available(lpips) == (True, "")
    fn = build_fullref(lpips, torch.device("cpu"))
    x = torch.rand(1, 3, 64, 64)
    assert float(fn(x, x)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(fn((x + 0.3 * torch.rand_like(x)).clamp(0, 1), x)[0]) > 0
    torch.save({**lins, "extra.weight": torch.zeros(1)}, tmp_path / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth")
    with pytest.raises(Exception, match="extra.weight"):
        build_fullref(lpips, torch.device("cpu"))
