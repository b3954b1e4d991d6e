"""IQPFR networks: Eq. 2 routing, Eq. 8 fusion, level conditioning (Eq. 7 / AdaIN), lookup, loading, adapter."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import adapters
from iqprior.models.iqpfr import IQPFR, TINY, DualCodebookVQGAN, IQPFRConfig
from iqprior.models.vqgan import VQAutoEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def x():
    torch.manual_seed(1)
    return torch.rand(2, 3, 64, 64) * 2 - 1


def test_eq2_routing_uses_hq_codebook_only_above_threshold(x):
    net = DualCodebookVQGAN(TINY)
    rec, loss, info = net(x, hq_plus=torch.tensor([True, False]))
    z = net.encoder(x)
    z1, idx1 = net.nearest(net.quantize, z)
    z2, _ = net.nearest(net.quantize_hq, z)
    torch.testing.assert_close(rec[1:], net.generator(z1[1:]), atol=1e-3, rtol=1e-3)        # S <= S_thr: Z_q = Z_q1
    torch.testing.assert_close(rec[:1], net.generator(z1[:1] + z2[:1]), atol=1e-3, rtol=1e-3)  # S > S_thr: Z_q = Z_q1 + a Z_q2
    assert torch.equal(info["indices"], idx1)
    # the HQ+ codebook learns only from HQ+ images
    net.zero_grad()
    net(x, hq_plus=torch.tensor([False, False]))[1].backward()
    assert net.quantize_hq.embedding.weight.grad is None or net.quantize_hq.embedding.weight.grad.abs().sum() == 0
    assert net.quantize.embedding.weight.grad.abs().sum() > 0
    net.zero_grad()
    net(x, hq_plus=torch.tensor([True, False]))[1].backward()
    assert net.quantize_hq.embedding.weight.grad.abs().sum() > 0
    # routing from scores: strictly above 0.9
    assert net.route(score=torch.tensor([0.9, 0.91]), batch=2).tolist() == [False, True]
    with pytest.raises(ValueError, match="hq_plus"):
        net(x)


def test_codebook_loss_is_eq6_on_fused_latent(x):
    net = DualCodebookVQGAN(dataclasses.replace(TINY, alpha=0.5, beta=0.25))
    _, loss, info = net(x, hq_plus=True)
    z = net.encoder(x)
    zq = net.nearest(net.quantize, z)[0] + 0.5 * net.nearest(net.quantize_hq, z)[0]
    expected = ((zq - z) ** 2).mean() * 1.25
    torch.testing.assert_close(loss, expected)


def test_attention_fusion_ignores_hq_codes_below_threshold():
    net = DualCodebookVQGAN(dataclasses.replace(TINY, fusion="attention"))
    z1, z2 = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8)
    no = torch.tensor([False, False])
    torch.testing.assert_close(net.fuse(z1, z2, no), net.fuse(z1, torch.randn_like(z2), no))
    yes = torch.tensor([True, True])
    assert not torch.allclose(net.fuse(z1, z2, yes), net.fuse(z1, torch.randn_like(z2), yes))


def test_eq8_fusion_and_lookup(x):
    net = IQPFR(dataclasses.replace(TINY, alpha=0.5)).eval()
    out = net(x, score=9)
    l, c = 8, 16
    z1 = net.quantize.embedding.weight[out.indices].view(2, l, l, c).permute(0, 3, 1, 2)
    z2 = net.quantize_hq.embedding.weight[out.indices_hq].view(2, l, l, c).permute(0, 3, 1, 2)
    torch.testing.assert_close(out.quant_feat, z1 + 0.5 * z2)
    torch.testing.assert_close(out.image, net.generator(z1 + 0.5 * z2))
    assert torch.equal(out.indices, out.logits.argmax(-1)) and out.logits.shape == (2, 64, 32)
    assert out.logits_hq.shape == (2, 64, 16)


def test_level_embedding_acts_only_through_the_added_term(x):
    net = IQPFR(TINY).eval()
    a = net(x, score=3)
    b = net(x, score=9)
    torch.testing.assert_close(a.logits, b.logits)  # zero-initialised: no effect yet
    with torch.no_grad():
        net.score_embedding.weight.normal_()
    a, b = net(x, score=3), net(x, score=9)
    assert not torch.allclose(a.logits, b.logits)
    z = net.encoder(x)
    emb = net.score_embedding.weight[3].view(1, 16, 8, 8)
    torch.testing.assert_close(a.logits, net.predict(z + emb)[0])   # Eq. 7: T(Z_l + s)
    torch.testing.assert_close(a.lq_feat, z)
    with torch.no_grad():
        net.score_embedding.weight[9] = net.score_embedding.weight[3]
    torch.testing.assert_close(net(x, score=9).logits, a.logits)
    mixed = net(x, score=torch.tensor([3, 9]))
    assert mixed.levels.tolist() == [3, 9]
    assert net(x, score=0.95).levels.tolist() == [9, 9]  # float = score, bucketed
    with pytest.raises(ValueError, match="level 10"):
        net(x, score=10)


def test_adain_condition_zero_init_then_level_dependent(x):
    net = IQPFR(dataclasses.replace(TINY, condition="adain")).eval()
    assert not hasattr(net, "score_embedding")
    torch.testing.assert_close(net(x, score=0).logits, net(x, score=9).logits)
    with torch.no_grad():
        for layer in net.ft_layers:
            layer.norm1.level_embedding.weight.normal_()
    assert not torch.allclose(net(x, score=0).logits, net(x, score=9).logits)


def test_straight_through_lookup_is_hard_forward_soft_backward(x):
    net = IQPFR(TINY)
    hard = net(x, score=9).image
    out = net(x, score=9, differentiable=True)
    torch.testing.assert_close(out.image, hard)
    out.image.mean().backward()
    assert net.ft_layers[0].linear1.weight.grad.abs().sum() > 0
    assert net.encoder.blocks[0].weight.grad.abs().sum() > 0
    cont = net(x, score=9, latent="continuous")
    torch.testing.assert_close(cont.quant_feat, cont.lq_feat)  # zero embedding: decoder reads Z_l itself


def test_vqgan_checkpoint_initialises_stage1_parts(tmp_path, x):
    vq = VQAutoEncoder(TINY.vqgan)
    path = tmp_path / "vqgan.pth"
    torch.save({"params_ema": vq.state_dict()}, path)
    net = IQPFR(TINY)
    hq_before = net.quantize_hq.embedding.weight.clone()
    net.load_vqgan_checkpoint(path)
    for k, v in vq.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    assert torch.equal(net.quantize_hq.embedding.weight, hq_before)
    rec_vq = vq(x)[0]  # the common path of the initialised network is CodeFormer's VQGAN
    torch.testing.assert_close(net.generator(net.nearest(net.quantize, net.encoder(x))[0]), rec_vq, atol=1e-3, rtol=1e-3)
    bad = tmp_path / "bad.pth"
    torch.save({"params_ema": {"encoder.blocks.0.weight": torch.zeros(1)}}, bad)
    with pytest.raises(Exception, match="missing"):
        net.load_vqgan_checkpoint(bad)


def test_paper_geometry_matches_codeformer_vqgan_keys():
    with torch.device("meta"):
        net = DualCodebookVQGAN(IQPFRConfig())
        vq = VQAutoEncoder()
    own = net.state_dict()
    for k, v in vq.state_dict().items():
        assert k in own and own[k].shape == v.shape, k
    assert own["quantize_hq.embedding.weight"].shape == (1024, 256)
    with torch.device("meta"):
        full = IQPFR(IQPFRConfig())
    assert len(full.ft_layers) == 9 and full.score_embedding.weight.shape == (10, 256 * 16 * 16)


def test_config_validation():
    with pytest.raises(ValueError, match="fusion"):
        IQPFRConfig(fusion="concat")
    with pytest.raises(ValueError, match="unknown IQPFR"):
        IQPFRConfig.from_dict({"codebooksize": 3})


def test_adapter_roundtrip(tmp_path):
    model = adapters.create("iqpfr", preset="tiny")
    y = model(torch.rand(1, 3, 64, 64))
    assert y.shape == (1, 3, 64, 64)
    with torch.no_grad():
        model.net.score_embedding.weight.normal_()
    x = torch.rand(2, 3, 64, 64)
    model.save_pretrained(tmp_path / "m")
    again = adapters.create("iqpfr", checkpoint=tmp_path / "m")
    torch.testing.assert_close(again(x, score=4), model(x, score=4))
    assert not torch.allclose(model(x, score=4), model(x))  # default level 9
    with pytest.raises(ValueError, match="64x64"):
        model(torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError, match="unknown iqpfr option"):
        adapters.create("iqpfr", preset="tiny", colour=3)
    losses = model.finetune_losses(x, x, torch.tensor([9, 2]))
    assert set(losses) == {"feat", "index"} and all(v.requires_grad for v in losses.values())


@pytest.mark.parametrize("hq_quantize", ["latent", "residual"])
def test_code_targets_are_the_nearest_codes_of_the_given_encoder(x, hq_quantize):
    """Eq. 13's GT codes, by brute-force distances; one function serves training and the adapter."""
    torch.manual_seed(0)
    net = IQPFR(dataclasses.replace(TINY, hq_quantize=hq_quantize))
    teacher = VQAutoEncoder(TINY.vqgan).encoder  # a different encoder: targets must come from it
    tg = net.code_targets(x, encoder=teacher)
    z = teacher(x).detach()
    c = z.shape[1]
    flat = z.permute(0, 2, 3, 1).reshape(-1, c)
    idx1 = torch.cdist(flat, net.quantize.embedding.weight.detach()).argmin(1)
    rest = flat if hq_quantize == "latent" else flat - net.quantize.embedding.weight.detach()[idx1]
    idx2 = torch.cdist(rest, net.quantize_hq.embedding.weight.detach()).argmin(1)
    assert torch.equal(tg["indices"], idx1.view(2, -1)) and torch.equal(tg["indices_hq"], idx2.view(2, -1))
    torch.testing.assert_close(tg["z_g"], net.codes_of(tg["indices"], tg["indices_hq"]))
    assert not tg["z_g"].requires_grad
    own = net.code_targets(x)  # default: the network's own encoder
    assert torch.equal(own["indices"], net.nearest(net.quantize, net.encoder(x))[1])
