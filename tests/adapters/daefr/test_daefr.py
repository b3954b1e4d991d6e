"""DAEFR / DAEFR+ adapters: tiny-config behaviour, official key layout, checkpoint formats, "+" identity."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import adapters
from adapters.daefr import UNUSED_AT_INFERENCE, DAEFRConfig, DAEFRNet, build_daefr, build_daefr_plus
from iqprior.checkpoint import CheckpointError

MANIFEST = Path("/work/shared/reference/daefr_manifest.json")


def _randomise(module: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Non-trivial weights everywhere (codebooks, LayerNorms, the zero position embedding)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() < 2 else 0.05))
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.fixture
def tiny_state() -> dict[str, torch.Tensor]:
    return _randomise(build_daefr(tiny=True, exact=True).net)


def test_tiny_forward_range_and_shape(tiny_state):
    model = build_daefr(tiny=True, exact=True).eval()
    model.net.load_state_dict(tiny_state)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
        out = model.net(x * 2 - 1, aux=True)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # output is the net's [-1, 1] output mapped linearly, not clamped
    torch.testing.assert_close(y, (out.image + 1) / 2)
    assert out.logits.shape == (2, 8 * 8, 64) and out.feature.shape == (2, 32, 8, 8)
    # the decoded image is exactly the decoder applied to the top-1 codes of the fixed codebook
    codes = model.net.vqvae.Fixed_quantize.lookup(out.logits.argmax(-1), 8)
    torch.testing.assert_close(out.image, model.net.vqvae.decode(codes))
    # per-sample independence (no batch mixing)
    with torch.no_grad():
        torch.testing.assert_close(model(x[1:]), y[1:], atol=1e-5, rtol=1e-5)


def test_wrong_input_size_is_a_clear_error():
    model = build_daefr(tiny=True, exact=True).eval()
    with pytest.raises(ValueError, match="16x16"):
        model(torch.rand(1, 3, 20, 20))


def test_unknown_option_rejected():
    with pytest.raises(TypeError, match="unknown DAEFR option"):
        build_daefr(fidelity=0.5)
    with pytest.raises(ValueError, match="multiples of 32"):
        build_daefr(tiny=True, ch=16)


def test_full_size_keys_equal_manifest():
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        net = DAEFRNet(DAEFRConfig())
    got = [(k, list(v.shape)) for k, v in net.state_dict().items()]
    assert got == [(e[0], e[1]) for e in manifest["entries"]]
    assert sum(p.numel() for p in net.parameters()) == 152_151_235
    for prefix in manifest["unused_at_inference"]:
        assert prefix.rstrip(".*") in UNUSED_AT_INFERENCE


def test_unused_modules_are_unused(tiny_state):
    """Changing the modules upstream marks unused at inference changes nothing."""
    model = build_daefr(tiny=True, exact=True).eval()
    model.net.load_state_dict(tiny_state)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y0 = model(x)
        for name in UNUSED_AT_INFERENCE:
            for p in model.net.get_submodule(name).parameters():
                p.normal_()
        torch.testing.assert_close(model(x), y0, rtol=0, atol=0)
        model.net.vqvae.Fixed_quantize.embedding.weight.normal_()  # ...but the fixed codebook is used
        assert not torch.equal(model(x), y0)


@pytest.mark.parametrize("variant", ["lightning", "no_vqvae_prefix", "module_prefix", "raw", "with_loss_keys"])
def test_official_checkpoint_round_trip(tmp_path, tiny_state, variant):
    sd = dict(tiny_state)
    if variant == "no_vqvae_prefix":  # accepted by upstream's scripts/test.py
        sd = {(k[len("vqvae."):] if k.startswith("vqvae.") else k): v for k, v in sd.items()}
    elif variant == "module_prefix":
        sd = {"module." + k: v for k, v in sd.items()}
    elif variant == "with_loss_keys":
        sd = {**sd, "loss.discriminator.main.0.weight": torch.zeros(3)}
    obj = sd if variant == "raw" else {"state_dict": sd, "epoch": 7, "global_step": 123,
                                       "pytorch-lightning_version": "1.0.8", "optimizer_states": [{}]}
    path = tmp_path / "DAEFR_model.ckpt"
    torch.save(obj, path)
    model = adapters.create("daefr", checkpoint=path, tiny=True)
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, tiny_state[k]), k
    assert not model.training


def test_wrong_file_is_a_clear_error(tmp_path, tiny_state):
    other = {"params_ema": {"conv_first.weight": torch.zeros(64, 3, 3, 3)}}
    path = tmp_path / "codeformer.pth"
    torch.save(other, path)
    with pytest.raises(CheckpointError, match="missing"):
        adapters.create("daefr", checkpoint=path, tiny=True)
    # the right model but a wrong shape is named
    bad = dict(tiny_state)
    bad["position_emb"] = torch.zeros(10, 64)
    torch.save({"state_dict": bad}, path)
    with pytest.raises(CheckpointError, match="position_emb"):
        adapters.create("daefr", checkpoint=path, tiny=True)


def test_truncated_file_is_a_clear_error(tmp_path, tiny_state):
    path = tmp_path / "DAEFR_model.ckpt"
    torch.save({"state_dict": tiny_state}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|cannot read"):
        adapters.create("daefr", checkpoint=path, tiny=True)


def test_plus_identity_at_init_and_condition_effect(tiny_state):
    base = build_daefr(tiny=True, exact=True).eval()
    plus = build_daefr_plus(tiny=True, exact=True).eval()
    base.net.load_state_dict(tiny_state)
    plus.net.load_state_dict(tiny_state)
    assert set(plus.state_dict()) == {"net." + k for k in tiny_state} | {"score_embedding.weight"}
    assert plus.score_embedding.weight.shape == (10, 32 * 8 * 8)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y = base(x)
        for score in (None, 0, torch.tensor([2, 7])):
            torch.testing.assert_close(plus(x, score=score), y, rtol=0, atol=0)
        # a trained embedding moves exactly the feature that enters the Transformer
        plus.score_embedding.weight[3].normal_()
        feat = base.net(x * 2 - 1, aux=True).feature
        got = plus.run_net(x * 2 - 1, aux=True, score=3).feature
        torch.testing.assert_close(got, feat + plus.score_embedding.weight[3].view(1, 32, 8, 8))
        torch.testing.assert_close(plus(x, score=9), y, rtol=0, atol=0)  # level 9 still zero


def test_finetune_losses_and_gradients(tiny_state):
    plus = build_daefr_plus(tiny=True, exact=True)
    plus.net.load_state_dict(tiny_state)
    lq, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    losses = plus.finetune_losses(lq, gt, score=torch.tensor([9, 4]))
    assert set(losses) == {"code_ce", "feature_l2"}
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0 for v in losses.values())
    # CE is against the GT's nearest fixed codes
    idx, feat = plus.net.gt_codes(gt * 2 - 1)
    out = plus.net(lq * 2 - 1, aux=True, decode=False)
    expected = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 64), idx.reshape(-1))
    torch.testing.assert_close(losses["code_ce"], expected)
    torch.testing.assert_close(losses["feature_l2"], 10 * torch.nn.functional.mse_loss(out.feature, feat))
    sum(losses.values()).backward()
    emb = plus.score_embedding.weight
    assert emb.grad[9].abs().sum() > 0 and emb.grad[4].abs().sum() > 0 and emb.grad[0].abs().sum() == 0
    # only the embedding by default; the official stage's parameters with train_base
    assert plus.trainable_parameters() == [emb]
    names = {id(p): k for k, p in plus.net.named_parameters()}
    base_names = [names[id(p)] for p in plus.trainable_parameters(train_base=True)[1:]]
    assert "cross_attention.q.weight" in base_names and "position_emb" in base_names
    assert not any(n.startswith(("vqvae.decoder", "vqvae.Fixed_", "vqvae.HQ_quantize")) for n in base_names)


def test_plus_finetune_step_reduces_loss(tiny_state):
    plus = build_daefr_plus(tiny=True, exact=True)
    plus.net.load_state_dict(tiny_state)
    lq, gt = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    opt = torch.optim.Adam(plus.trainable_parameters(), lr=1e-2)
    first = None
    for _ in range(5):
        loss = sum(plus.finetune_losses(lq, gt, score=6).values())
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(sum(plus.finetune_losses(lq, gt, score=6).values())) < first


@pytest.mark.parametrize("name", ["daefr", "daefr+"])
def test_save_pretrained_round_trip(tmp_path, tiny_state, name):
    model = adapters.create(name, tiny=True)
    model.net.load_state_dict(tiny_state)
    if name == "daefr+":
        with torch.no_grad():
            model.score_embedding.weight.normal_()
    model.save_pretrained(tmp_path / "saved")
    loaded = adapters.create(name, checkpoint=tmp_path / "saved")
    assert loaded.config == model.config
    saved_state = loaded.state_dict()
    assert saved_state.keys() == model.state_dict().keys()
    for k, v in model.state_dict().items():
        assert torch.equal(saved_state[k], v), k
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, score=3), model.eval()(x, score=3), rtol=0, atol=0)


def test_registry_lists_official_file():
    assert adapters.official_weights("daefr") == ("DAEFR_model.ckpt",)
    assert adapters.official_weights("daefr+") == ("DAEFR_model.ckpt",)
    from iqprior import weights
    entry = weights.REGISTRY["DAEFR_model.ckpt"]
    assert "LIAGM/DAEFR_pretrain_model" in entry.url and set(adapters.files_used_by()["DAEFR_model.ckpt"]) == {"daefr", "daefr+"}


@pytest.mark.parametrize("name", ["daefr", "daefr+"])
def test_restore_cli_aligned(tmp_path, face_paths, tiny_state, name):
    from iqprior.cli import main
    from iqprior.faces.restorer import Restorer
    from iqprior.io import read_image

    model = adapters.create(name, tiny=True)
    model.net.load_state_dict(tiny_state)
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    rc = main(["restore", str(face_paths[0]), "--model", name, "--checkpoint", str(tmp_path / "model"),
               "--aligned", "--out", str(out), "--device", "cpu", "--no-progress"])
    assert rc == 0
    written = out / (face_paths[0].stem + ".png")
    assert written.is_file(), f"nothing written under {out}: {list(out.iterdir())}"
    img = read_image(written)
    # aligned crops are restored at the model's size (16 for the tiny config)
    assert img.shape == (3, 16, 16) and float(img.min()) >= 0 and float(img.max()) <= 1
    x = Restorer(model.eval(), "cpu", aligned=True).input_view(read_image(face_paths[0]))
    assert x.shape == (3, 16, 16)
    with torch.no_grad():
        expected = model(x[None], score=9)[0].clamp(0, 1)
    torch.testing.assert_close(img, expected, atol=0.6 / 255, rtol=0)  # the model's output, 8-bit


@pytest.mark.slow
def test_full_size_forward_512():
    """The released configuration end to end (about 15-25 s on 2 CPU threads)."""
    plus = build_daefr_plus().eval()
    x = torch.rand(1, 3, 512, 512)
    with torch.no_grad():
        out = plus.run_net(x * 2 - 1, aux=True)
        y = plus(x)
    assert out.logits.shape == (1, 256, 1024) and out.feature.shape == (1, 256, 16, 16)
    torch.testing.assert_close(y, (out.image + 1) / 2)
    assert y.shape == x.shape and torch.isfinite(y).all()
