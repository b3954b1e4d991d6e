"""NU2Net adapter: official-format file ("net" wrapper), demo path, "+" identity, sizes, CLI restore."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import adapters
from adapters import CheckpointError
from adapters.nu2net import build_nu2net, normalize_global, normalize_per_channel

MANIFEST = Path("/work/shared/reference/nu2net_manifest.json")


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> tuple[Path, dict]:
    """A file laid out as the released NU2Net_ckpt.pth: {'net', 'optimizer', 'epoch', 'max_psnr', 'max_ssim'}."""
    torch.manual_seed(5)
    state = {k: v + 0.02 * torch.randn_like(v) for k, v in build_nu2net().net.state_dict().items()}
    optim = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=1e-3).state_dict()
    path = tmp_path_factory.mktemp("nu2") / "NU2Net_ckpt.pth"
    torch.save({"net": state, "optimizer": optim, "epoch": 411, "max_psnr": 22.67, "max_ssim": 0.92}, path)
    return path, state


def test_keys_match_official_layout():
    own = build_nu2net().net.state_dict()
    assert len(own) == 20
    assert sum(v.numel() for v in own.values()) == pytest.approx(3.1e6, rel=0.05)
    if MANIFEST.is_file():
        entries = json.loads(MANIFEST.read_text())["entries"]
        assert [e[0] for e in entries] == list(own)
        assert all(list(own[k].shape) == shape for k, shape, *_ in entries)


def test_official_file_loads_strictly(official_file, tmp_path):
    path, state = official_file
    model = adapters.create("nu2net", checkpoint=path)
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, state[k]), k
    torch.save(state, tmp_path / "raw.pth")                     # an unwrapped state dict loads too
    adapters.create("nu2net", checkpoint=tmp_path / "raw.pth")


def test_wrong_and_truncated_files(official_file, tmp_path):
    path, state = official_file
    torch.save({"net": {k: v for k, v in state.items() if "d_stage1" not in k}}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="missing 2"):
        adapters.create("nu2net", checkpoint=tmp_path / "missing.pth")
    other = torch.nn.Conv2d(3, 3, 3).state_dict()
    torch.save({"net": other}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="another model"):
        adapters.create("nu2net", checkpoint=tmp_path / "other.pth")
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:1000])
    with pytest.raises(CheckpointError):
        adapters.create("nu2net", checkpoint=tmp_path / "cut.pth")


def test_norm_tail():
    y = torch.tensor([[[[0.2, 0.4]], [[-0.5, 1.5]], [[0.0, 1.0]]]])      # (1, 3, 1, 2), out of range
    out = normalize_per_channel(y)
    assert torch.allclose(out, torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]]]]), atol=1e-6)
    inside = torch.rand(2, 3, 4, 4)
    assert torch.equal(normalize_per_channel(inside), inside)
    assert torch.equal(normalize_global(inside), inside)
    # per image: an in-range image is left alone even when its batch neighbour is out of range
    batch = torch.cat([inside[:1], inside[1:] * 3])
    out = normalize_per_channel(batch)
    assert torch.equal(out[0], inside[0]) and out[1].max() <= 1


def test_demo_path_sizes(official_file):
    model = adapters.create("nu2net", checkpoint=official_file[0])
    for h, w in [(17, 23), (31, 48), (40, 40)]:
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert y.min() >= 0 and y.max() <= 1
    # sizes that are multiples of 16 are not resized; others go through the working size
    x = torch.rand(1, 3, 37, 50)
    with torch.no_grad():
        small = model.enhance(x)
        assert small.shape[-2:] == (32, 48)
        back = F.interpolate(small, size=(37, 50), mode="bilinear", align_corners=True)
        assert torch.allclose(model(x), back)


@pytest.mark.slow
def test_large_image(official_file):
    model = adapters.create("nu2net", checkpoint=official_file[0])
    with torch.no_grad():
        y = model(torch.rand(1, 3, 700, 1000))
    assert y.shape == (1, 3, 700, 1000)


def test_finetune_losses_l1(official_file):
    plus = adapters.create("nu2net+", checkpoint=official_file[0]).train()
    lq, gt = torch.rand(2, 3, 32, 40), torch.rand(2, 3, 32, 40)
    losses = plus.finetune_losses(lq, gt, score=torch.tensor([4, 8]))
    assert set(losses) == {"l1"}
    with torch.no_grad():
        expected = (plus.enhance(lq, score=torch.tensor([4, 8])) - F.interpolate(
            gt, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)).abs().mean()
    assert losses["l1"].item() == pytest.approx(expected.item(), rel=1e-6)
    (g,) = torch.autograd.grad(losses["l1"], plus.trainable_parameters())
    assert g[4].abs().sum() > 0 and g[8].abs().sum() > 0 and g[0].abs().sum() == 0


def test_save_pretrained_round_trip(official_file, tmp_path):
    plus = adapters.create("nu2net+", checkpoint=official_file[0])
    with torch.no_grad():
        plus.score_embedding.weight.normal_()
    plus.save_pretrained(tmp_path / "saved")
    again = adapters.create("nu2net+", checkpoint=tmp_path / "saved")
    x = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        assert torch.equal(plus(x, score=5), again(x, score=5))
    with pytest.raises(CheckpointError, match="nu2net\\+"):
        adapters.create("nu2net", checkpoint=tmp_path / "saved")


def test_restore_cli_on_samples(official_file, underwater_paths, tmp_path, monkeypatch):
    """``iqprior restore --model nu2net+ --score 9`` on the bundled underwater images."""
    from iqprior import cli
    from iqprior.io import read_image
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(official_file[0].parent))
    src = tmp_path / "in"
    src.mkdir()
    for p in underwater_paths:
        (src / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    rc = cli.main(["restore", str(src), "--model", "nu2net+", "--score", "9", "--out", str(out),
                   "--checkpoint", "official", "--device", "cpu", "--no-progress"])
    assert rc == 0
    for p in underwater_paths:
        written = sorted(out.rglob(p.stem + "*"))
        assert written, f"no output for {p.name}"
        assert read_image(written[0]).shape == read_image(p).shape


def test_bad_options():
    with pytest.raises(TypeError, match="unknown option"):
        build_nu2net(mode="mp")
    assert adapters.official_weights("nu2net+") == ("NU2Net_ckpt.pth",)
    assert build_nu2net().task == "image" and build_nu2net().native_size is None


def test_finetune_on_paired_underwater_data(official_file, underwater_paths, tmp_path):
    """A few steps on (raw, reference) pairs through PairedImageDataset: only the embedding moves."""
    from iqprior import data
    from iqprior.io import read_image, write_image
    ref, raw = tmp_path / "ref", tmp_path / "raw"
    for p in underwater_paths:
        gt = read_image(p)[..., :48, :64]
        write_image(ref / f"{p.stem}.png", gt)
        write_image(raw / f"{p.stem}.png", gt * torch.tensor([0.6, 0.9, 1.0]).view(3, 1, 1))  # a colour cast
    ds = data.PairedImageDataset(raw, ref, default_level=7)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    plus = adapters.create("nu2net+", checkpoint=official_file[0]).train()
    before = {k: v.clone() for k, v in plus.net.state_dict().items()}
    opt = torch.optim.Adam(plus.trainable_parameters(), lr=1e-2)
    losses = []
    for _ in range(4):
        loss = sum(plus.finetune_losses(batch["lq"], batch["gt"], score=batch["level"]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert plus.score_embedding.weight[7].abs().sum() > 0 and plus.score_embedding.weight[9].abs().sum() == 0
    for k, v in plus.net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_finetune_cli(official_file, underwater_paths, tmp_path):
    """``iqprior finetune --model nu2net+ --data REF --lq RAW --scores scores.jsonl``."""
    from iqprior.cli import main
    from iqprior.io import read_image, write_image
    ref, raw = tmp_path / "ref", tmp_path / "raw"
    records = []
    for p in underwater_paths:
        gt = read_image(p)[..., :48, :64]
        write_image(ref / f"{p.stem}.png", gt)
        write_image(raw / f"{p.stem}.png", gt * 0.7)
        records.append(json.dumps({"path": f"{p.stem}.png", "score": 0.95, "level": 9}))
    (tmp_path / "scores.jsonl").write_text("\n".join(records) + "\n")
    out = tmp_path / "run"
    rc = main(["finetune", "--model", "nu2net+", "--data", str(ref), "--lq", str(raw), "--scores",
               str(tmp_path / "scores.jsonl"), "--checkpoint", str(official_file[0]), "--out", str(out),
               "--steps", "2", "--batch-size", "2", "--lr", "1e-2", "--num-workers", "0", "--device", "cpu",
               "--no-progress"])
    assert rc == 0
    again = adapters.create("nu2net+", checkpoint=out / "final")
    emb = again.score_embedding.weight
    assert emb[9].abs().sum() > 0 and emb[:9].abs().sum() == 0           # only the GT's level was trained
    base = adapters.create("nu2net", checkpoint=official_file[0])
    for k, v in base.net.state_dict().items():
        assert torch.equal(v, again.net.state_dict()[k]), k
