"""PUIE-Net adapter: official-format file, modes, "+" identity, sizes, fine-tuning losses."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import adapters
from adapters import CheckpointError
from adapters.puienet import build_puienet, network_size

MANIFEST = Path("/work/shared/reference/puienet_manifest.json")


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> tuple[Path, dict]:
    """A file laid out as the released puie.pth: raw state dict incl. VGG16.loss_network.*."""
    torch.manual_seed(3)
    state = {k: v + 0.02 * torch.randn_like(v) for k, v in build_puienet().net.state_dict().items()}
    path = tmp_path_factory.mktemp("puie") / "puie.pth"
    torch.save(state, path)
    return path, state


def test_keys_match_official_layout():
    own = build_puienet().net.state_dict()
    assert len(own) == 132
    assert sum(k.startswith("VGG16.loss_network.") for k in own) == 26
    if MANIFEST.is_file():
        entries = json.loads(MANIFEST.read_text())["entries"]
        assert [e[0] for e in entries] == list(own)
        assert all(list(own[k].shape) == shape for k, shape, *_ in entries)


def test_official_file_loads_strictly(official_file):
    path, state = official_file
    model = adapters.create("puienet", checkpoint=path)
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, state[k]), k
    # the same file with a DataParallel prefix loads too
    prefixed = path.with_name("prefixed.pth")
    torch.save({"module." + k: v for k, v in state.items()}, prefixed)
    model2 = adapters.create("puienet", checkpoint=prefixed)
    assert torch.equal(model2.net.decoder.conv_u.weight, state["decoder.conv_u.weight"])


def test_wrong_and_truncated_files(official_file, tmp_path):
    path, state = official_file
    no_vgg = {k: v for k, v in state.items() if not k.startswith("VGG16.")}
    torch.save(no_vgg, tmp_path / "no_vgg.pth")
    with pytest.raises(CheckpointError, match="missing 26"):
        adapters.create("puienet", checkpoint=tmp_path / "no_vgg.pth")
    bad = dict(state)
    bad["decoder.conv_u.weight"] = torch.zeros(128, 21, 1, 1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="wrong shape"):
        adapters.create("puienet", checkpoint=tmp_path / "bad.pth")
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cannot read"):
        adapters.create("puienet", checkpoint=tmp_path / "cut.pth")


def test_mp_output_and_sizes(official_file):
    model = adapters.create("puienet", checkpoint=official_file[0])
    for h, w in [(17, 23), (40, 33)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert network_size(17, 23) == (16, 16) and network_size(41, 70) == (40, 64) and network_size(9, 100) == (16, 96)
    # a multiple-of-8 input is not resized: enhance == forward
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(model(x), model.enhance(x))


def test_mc_reproducible_and_different_from_mp(official_file):
    model = adapters.create("puienet", checkpoint=official_file[0], mode="mc", samples=3,
                            generator=torch.Generator().manual_seed(11))
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        first = model(x)
        model.generator = torch.Generator().manual_seed(11)
        again = model(x)
        other = model(x)                                     # the generator has moved on
        model.mode = "mp"
        mp = model(x)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first, mp)


def test_mc_with_one_sample_at_zero_noise_is_mp(official_file):
    """MC draws z = mean + std * eps; with std forced to ~0 it must equal MP."""
    model = adapters.create("puienet", checkpoint=official_file[0])
    head = model.net.decoder.compute_z_pr
    with torch.no_grad():
        head.u_conv_layer.bias[20:] = -60.0
        head.s_conv_layer.bias[20:] = -60.0
        head.u_conv_layer.weight[20:] = 0.0
        head.s_conv_layer.weight[20:] = 0.0
        x = torch.rand(1, 3, 16, 16)
        mp = model(x)
        model.mode, model.samples = "mc", 3
        mc = model(x)
    assert torch.allclose(mp, mc, atol=1e-6)


def test_plus_identity_at_init_and_score_effect(official_file):
    path = official_file[0]
    base = adapters.create("puienet", checkpoint=path)
    plus = adapters.create("puienet+", checkpoint=path)
    assert plus.score_embedding.weight.shape == (10, 64)
    x = torch.rand(2, 3, 17, 23)
    with torch.no_grad():
        y = base(x)
        assert torch.equal(plus(x, score=torch.tensor([0, 9])), y)
        plus.score_embedding.weight.normal_()
        y9 = plus(x, score=9)
        assert not torch.allclose(y9, y)
        assert not torch.allclose(y9, plus(x, score=2))
        assert torch.equal(y9, plus(x))                               # default level 9


def test_finetune_losses_official_elbo(official_file):
    plus = adapters.create("puienet+", checkpoint=official_file[0]).train()
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    losses = plus.finetune_losses(lq, gt, score=torch.tensor([3, 9]))
    assert set(losses) == {"mse", "perceptual", "kl"}
    total = sum(losses.values())
    assert total.ndim == 0 and torch.isfinite(total)
    params = plus.trainable_parameters()
    assert params == [plus.score_embedding.weight]
    (g,) = torch.autograd.grad(total, params)
    assert g[3].abs().sum() > 0 and g[9].abs().sum() > 0 and g[5].abs().sum() == 0
    with pytest.raises(ValueError, match="same shape"):
        plus.finetune_losses(lq, gt[..., :8], score=9)


def test_save_pretrained_round_trip(official_file, tmp_path):
    plus = adapters.create("puienet+", checkpoint=official_file[0], mode="mc", samples=2)
    with torch.no_grad():
        plus.score_embedding.weight.normal_()
    plus.save_pretrained(tmp_path / "saved")
    again = adapters.create("puienet+", checkpoint=tmp_path / "saved")
    assert again.mode == "mc" and again.samples == 2
    for k, v in plus.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_bad_options():
    with pytest.raises(ValueError, match="mode"):
        build_puienet(mode="avg")
    with pytest.raises(TypeError, match="unknown option"):
        build_puienet(fidelity=0.5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_puienet()(torch.rand(3, 16, 16))
    assert adapters.official_weights("puienet+") == ("puie.pth",)
