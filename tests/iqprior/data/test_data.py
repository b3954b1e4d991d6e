"""iqprior.data: Eq. 16 degradations and score-labelled datasets."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iqprior.data import (
    PAPER,
    DegradationConfig,
    PairedImageDataset,
    ScoredImageDataset,
    apply_degradation,
    degrade,
    sample_params,
)
from iqprior.io import read_image_array, write_image


def _img(h=64, w=48, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 1, h * w * 3, dtype=np.float32).reshape(h, w, 3)
    return np.clip(base + 0.1 * rng.standard_normal((h, w, 3)).astype(np.float32), 0, 1)


def test_paper_ranges():
    assert PAPER.blur_sigma == (1.0, 15.0) and PAPER.downsample == (1.0, 30.0)
    assert PAPER.noise == (0.0, 20.0) and PAPER.jpeg == (30.0, 90.0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        p = sample_params(rng)
        assert 1 <= p.sigma_x <= 15 and 1 <= p.scale <= 30 and 0 <= p.noise <= 20 and 30 <= p.quality <= 90


def test_degrade_shape_range_and_reproducible():
    img = _img()
    a = degrade(img, np.random.default_rng(3))
    b = degrade(img, np.random.default_rng(3))
    c = degrade(img, np.random.default_rng(4))
    assert a.shape == img.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a - img).mean() > 0.01  # it really degrades


def test_identity_when_every_step_is_neutral():
    cfg = DegradationConfig(blur=False, downsample=(1, 1), noise_on=False, jpeg_on=False, round_output=False)
    img = _img()
    np.testing.assert_allclose(degrade(img, np.random.default_rng(0), cfg), img, atol=1e-6)


def test_stronger_blur_removes_more_detail():
    img = _img(64, 64)
    mk = lambda s: DegradationConfig(blur_sigma=(s, s), downsample=(1, 1), noise_on=False, jpeg_on=False,
                                     aniso_prob=0.0)
    e1 = np.abs(degrade(img, np.random.default_rng(0), mk(1.0)) - img).mean()
    e2 = np.abs(degrade(img, np.random.default_rng(0), mk(8.0)) - img).mean()
    assert e2 > e1 > 0


def test_config_validation():
    with pytest.raises(ValueError, match="downsample"):
        DegradationConfig(downsample=(0.5, 2))
    with pytest.raises(ValueError, match="kernel_size"):
        DegradationConfig(kernel_size=40)
    with pytest.raises(TypeError, match="Generator"):
        degrade(_img(), 0)
    with pytest.raises(ValueError, match="H, W, 3"):
        degrade(np.zeros((8, 8)), np.random.default_rng(0))
    p = sample_params(np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        apply_degradation(_img(), p, None)


@pytest.fixture
def image_dir(tmp_path):
    root = tmp_path / "hq"
    for i in range(4):
        write_image(root / "sub" / f"{i:02d}.png", torch.from_numpy(_img(40, 40, i)).permute(2, 0, 1))
    return root


def _manifest(tmp_path, root, scores):
    path = tmp_path / "scores.jsonl"
    with open(path, "w") as f:
        for i, s in enumerate(scores):
            rec = {"path": str(root / "sub" / f"{i:02d}.png"), "raw": {"piqe": 1.0}, "score": s,
                   "level": None if s is None else int(min(9, s * 10)), "error": None if s is not None else "bad"}
            f.write(json.dumps(rec) + "\n")
    return path


def test_scored_dataset_items(tmp_path, image_dir):
    man = _manifest(tmp_path, image_dir, [0.95, 0.5, 0.91, 0.1])
    ds = ScoredImageDataset(image_dir, scores=man, size=32, seed=7)
    assert len(ds) == 4
    it = ds[0]
    assert it["lq"].shape == it["gt"].shape == (3, 32, 32)
    assert it["lq"].dtype == torch.float32 and it["score"].dim() == 0 and it["score"].dtype == torch.float32
    assert it["level"].dtype == torch.long and it["level"].item() == 9
    assert it["hq_plus"].dtype == torch.bool and bool(it["hq_plus"])
    assert [bool(ds[i]["hq_plus"]) for i in range(4)] == [True, False, True, False]
    assert ds[3]["level"].item() == 1
    assert ds.hq_plus_fraction == 0.5
    # reproducible from (seed, epoch, index)
    a = ds[1]["lq"]
    assert torch.equal(a, ds[1]["lq"])
    ds.set_epoch(1)
    b = ds[1]["lq"]
    assert not torch.equal(a, b)
    ds2 = ScoredImageDataset(image_dir, scores=man, size=32, seed=7)
    ds2.set_epoch(1)
    assert torch.equal(b, ds2[1]["lq"])


def test_scored_dataset_no_degradation_and_records(image_dir):
    recs = [{"path": f"sub/{i:02d}.png", "score": 0.3, "level": None} for i in range(4)]
    ds = ScoredImageDataset(image_dir, scores=recs, size=None, degrade=None)
    it = ds[2]
    assert torch.equal(it["lq"], it["gt"]) and it["gt"].shape == (3, 40, 40)
    assert it["level"].item() == 3 and not bool(it["hq_plus"])
    gt = read_image_array(ds.paths[2])
    assert np.allclose(it["gt"].permute(1, 2, 0).numpy(), gt)


def test_missing_scores_are_an_error_or_default(tmp_path, image_dir):
    man = _manifest(tmp_path, image_dir, [0.95, None, 0.9, 0.1])  # record 1 failed
    with pytest.raises(ValueError, match=r"1 of 4 images have no quality score.*01\.png.*default_level"):
        ScoredImageDataset(image_dir, scores=man)
    with pytest.raises(ValueError, match="no scores were given"):
        ScoredImageDataset(image_dir)
    ds = ScoredImageDataset(image_dir, scores=man, default_level=4, size=16, degrade=None)
    assert ds[1]["level"].item() == 4 and abs(ds[1]["score"].item() - 0.45) < 1e-6
    with pytest.raises(ValueError, match="default_level"):
        ScoredImageDataset(image_dir, default_level=10)


def test_paired_dataset(tmp_path, image_dir):
    lq_root = tmp_path / "lq"
    for i in (0, 2):
        write_image(lq_root / "sub" / f"{i:02d}.jpg", torch.zeros(3, 40, 40))
    man = _manifest(tmp_path, image_dir, [0.95, 0.5, 0.2, 0.1])
    ds = PairedImageDataset(lq_root, image_dir, scores=man)
    assert len(ds) == 2
    it = ds[1]
    assert it["path"].endswith("02.png") and it["level"].item() == 2
    assert it["lq"].abs().max() == 0 and it["gt"].abs().max() > 0
    write_image(lq_root / "zz.png", torch.zeros(3, 40, 40))
    with pytest.raises(ValueError, match="no GT"):
        PairedImageDataset(lq_root, image_dir, scores=man)


def test_dataloader_batches(tmp_path, image_dir):
    man = _manifest(tmp_path, image_dir, [0.95, 0.5, 0.91, 0.1])
    ds = ScoredImageDataset(image_dir, scores=man, size=32)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["lq"].shape == (4, 3, 32, 32) and batch["level"].shape == (4,)
    assert batch["hq_plus"].tolist() == [True, False, True, False]
