"""CodeFormer / CodeFormer+ adapters: keys, loading, forward, "+" identity, fine-tuning losses."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import adapters
from adapters import CheckpointError
from adapters.codeformer import CodeFormer, CodeFormerConfig, adaptive_instance_norm

MANIFEST = Path("/work/shared/reference/codeformer_manifest.json")
TINY = adapters.spec("codeformer").tiny["config"]  # the spec's tiny network (AdapterSpec.tiny)


@pytest.fixture
def tiny() -> adapters.Adapter:
    torch.manual_seed(0)
    return adapters.create("codeformer", tiny=True)


@pytest.mark.parametrize("name", ["codeformer", "codeformer+"])
def test_registry_construction_and_forward(name):
    model = adapters.create(name, tiny=True, fidelity=0.7)
    assert not model.training and model.fidelity == 0.7 and model.native_size == 64
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y = model(x, score=torch.tensor([0, 9]))
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_fidelity_changes_output_and_zero_skips_fusion(tiny):
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for blk in tiny.net.fuse_convs_dict.values():      # make fusion non-trivial
            blk.shift[2].bias.fill_(0.3)
        y0, y5, y1 = (tiny(x, fidelity=w) for w in (0.0, 0.5, 1.0))
        # w = 0: the fusion blocks are never called
        tiny.net.fuse_convs_dict = torch.nn.ModuleDict()
        torch.testing.assert_close(tiny(x, fidelity=0.0), y0)
    assert (y5 - y0).abs().max() > 1e-4 and (y1 - y5).abs().max() > 1e-4
    with pytest.raises(ValueError, match="fidelity"):
        adapters.create("codeformer", tiny=True, fidelity=1.5)


def test_output_is_affine_map_of_network_output_and_not_clamped(tiny):
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        tiny.net.generator.blocks[-1].bias.fill_(3.0)      # push outputs outside [-1, 1]
        out = tiny.net(x * 2 - 1, w=0.5, adain=True)[0]
        y = tiny(x)
    torch.testing.assert_close(y, (out + 1) / 2)
    assert y.max() > 1.0


def test_adain_matches_style_statistics():
    content, style = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5) * 3 + 1
    out = adaptive_instance_norm(content, style)
    torch.testing.assert_close(out.mean((2, 3)), style.mean((2, 3)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.std((2, 3)), style.std((2, 3)), atol=1e-3, rtol=1e-3)


def test_wrong_input_size_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="resize"):
        tiny(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("wrapper,prefix", [("params_ema", ""), ("params", ""), ("params_ema", "module."),
                                            (None, "module.")])
def test_official_format_round_trip(tmp_path, wrapper, prefix, tiny):
    state = {prefix + k: v.clone() for k, v in tiny.net.state_dict().items()}
    path = tmp_path / "codeformer.pth"
    torch.save({wrapper: state} if wrapper else state, path)
    for name in ("codeformer", "codeformer+"):
        loaded = adapters.create(name, checkpoint=path, tiny=True)
        for k, v in tiny.net.state_dict().items():
            assert torch.equal(loaded.net.state_dict()[k], v), k
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), tiny(x), rtol=0, atol=0)


def test_truncated_and_wrong_model_files(tmp_path, tiny):
    good = tmp_path / "good.pth"
    torch.save({"params_ema": tiny.net.state_dict()}, good)
    truncated = tmp_path / "trunc.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot read"):
        adapters.create("codeformer", checkpoint=truncated, tiny=True)
    wrong = tmp_path / "wrong.pth"   # a bare VQGAN file: no Transformer / fusion keys
    torch.save({"params_ema": {k: v for k, v in tiny.net.state_dict().items()
                               if k.split(".")[0] in ("encoder", "quantize", "generator")}}, wrong)
    with pytest.raises(CheckpointError, match="missing") as info:
        adapters.create("codeformer", checkpoint=wrong, tiny=True)
    assert "position_emb" in str(info.value) or "ft_layers" in str(info.value)
    with pytest.raises(CheckpointError):   # full-size file into a tiny model: shape mismatch
        torch.save({"params_ema": {**tiny.net.state_dict(), "position_emb": torch.zeros(256, 512)}}, wrong)
        adapters.create("codeformer", checkpoint=wrong, tiny=True)


def test_save_and_load_finetuned_plus_dir_reproduces_outputs(tmp_path):
    plus = adapters.create("codeformer+", tiny=True, fidelity=0.3)
    with torch.no_grad():
        plus.score_embedding.weight.normal_(0, 0.5)
    plus.save_pretrained(tmp_path / "ft")
    again = adapters.create("codeformer+", checkpoint=tmp_path / "ft")
    assert again.fidelity == 0.3 and again.config == plus.config
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for s in (2, 9):
            torch.testing.assert_close(again(x, score=s), plus(x, score=s), rtol=0, atol=0)
    with pytest.raises(CheckpointError):
        adapters.create("codeformer", checkpoint=tmp_path / "ft")


def test_finetune_losses_train_only_the_embedding():
    plus = adapters.create("codeformer+", tiny=True).train()
    lq, gt = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    params = plus.trainable_parameters(train_base=False)
    assert params == [plus.score_embedding.weight]
    losses = plus.finetune_losses(lq, gt, torch.tensor([3, 9]))
    assert set(losses) == {"feat", "code_ce"} and all(v.ndim == 0 and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    g = plus.score_embedding.weight.grad
    assert g[3].abs().sum() > 0 and g[9].abs().sum() > 0 and g[0].abs().sum() == 0
    names = {n.split(".")[0] for n, p in plus.net.named_parameters()
             if any(p is q for q in plus.trainable_parameters(train_base=True))}
    assert "quantize" not in names and "generator" not in names and "ft_layers" in names


def test_finetune_targets_come_from_given_vqgan_file(tmp_path):
    from iqprior.models.vqgan import VQAutoEncoder
    plus = adapters.create("codeformer+", tiny=True)
    vq = VQAutoEncoder(plus.config.vqgan)
    vq.quantize.load_state_dict(plus.net.quantize.state_dict())
    torch.save({"params_ema": vq.state_dict()}, tmp_path / "vqgan.pth")
    plus2 = adapters.create("codeformer+", tiny=True, vqgan_checkpoint=str(tmp_path / "vqgan.pth"))
    plus2.load_state_dict(plus.state_dict())
    gt = torch.rand(1, 3, 64, 64)
    expected = vq.quantize(vq.encoder(gt * 2 - 1))[2]["indices"]
    assert torch.equal(plus2._hq_codes(gt), expected)


def test_fuse_tables_match_upstream():
    with torch.device("meta"):
        net = CodeFormer()
    assert net.fuse_encoder_block == {"512": 2, "256": 5, "128": 8, "64": 11, "32": 14, "16": 18}
    assert net.fuse_generator_block == {"16": 6, "32": 9, "64": 12, "128": 15, "256": 18, "512": 21}
    assert isinstance(net.lq_feat, torch.nn.Identity) and len(net.encoder.blocks) == 25  # lq_feat: blocks.24's output


def test_config_errors():
    with pytest.raises(ValueError, match="unknown CodeFormer config"):
        adapters.create("codeformer", config={"bogus": 1})
    with pytest.raises(ValueError, match="connect_list"):
        CodeFormerConfig(**{**TINY, "connect_list": ["128"]})


@pytest.mark.skipif(not MANIFEST.is_file(), reason="reference manifest not available")
@pytest.mark.parametrize("name", ["codeformer", "codeformer+"])
def test_full_size_keys_and_shapes_equal_manifest(name):
    model = adapters.create(name)          # full size on CPU (~94 M parameters), no forward
    entries = json.loads(MANIFEST.read_text())["entries"]
    got = [(k, list(v.shape)) for k, v in model.net.state_dict().items()]
    assert got == [(e[0], e[1]) for e in entries]
    assert sum(p.numel() for p in model.net.parameters()) == sum(
        int(torch.tensor(e[1]).prod()) for e in entries)
