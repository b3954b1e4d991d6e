import pytest
import torch
from torch import nn

import iqprior
from iqprior import ScoreEmbedding, condition


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 3, 3, padding=1))


@pytest.mark.parametrize("mode", ["add", "adain"])
def test_identity_at_init_for_every_score(mode):
    net = small_net()
    emb = ScoreEmbedding(10, (8, 6, 6)) if mode == "add" else ScoreEmbedding.for_adain(10, 8)
    wrapped = condition(net, at="2", embedding=emb, mode=mode)
    x = torch.randn(2, 3, 6, 6)
    ref = net(x)
    for score in [0, 5, 9, 0.0, 0.42, 1.0, torch.tensor([3, 9])]:
        assert torch.equal(wrapped(x, score=score), ref)


def test_embedding_changes_only_its_level():
    net = small_net()
    emb = ScoreEmbedding(10, (8, 6, 6))
    wrapped = condition(net, at="0", embedding=emb)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        emb.weight[7].normal_()
    assert not torch.allclose(wrapped(x, score=7), net(x))
    assert torch.equal(wrapped(x, score=6), net(x))
    per_sample = wrapped(x, score=torch.tensor([7, 6]))
    assert not torch.allclose(per_sample[0], net(x)[0]) and torch.equal(per_sample[1], net(x)[1])
    # the added term is exactly the embedding at the hooked output
    feat = net[0](x)
    assert torch.allclose(net[1:](feat + emb.weight[7].view(1, 8, 6, 6)), wrapped(x, score=7))


def test_adain_scales_centred_feature():
    net = nn.Sequential(nn.Conv2d(3, 4, 1))
    emb = ScoreEmbedding.for_adain(10, 4)
    wrapped = condition(net, at="0", embedding=emb, mode="adain")
    with torch.no_grad():
        emb.weight[9] = torch.cat([torch.ones(4), torch.full((4,), 0.5)])  # gamma = 1, beta = 0.5
    x = torch.randn(1, 3, 5, 5)
    f = net(x)
    mu = f.mean(dim=(2, 3), keepdim=True)
    expected = (f - mu) * 2 + mu + 0.5  # std doubled, mean shifted
    assert torch.allclose(wrapped(x, score=9), expected, atol=1e-6)


def test_net_untouched_and_state_dict_keys():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    wrapped = condition(net, at="2", embedding=ScoreEmbedding(10, (8, 1, 1)))
    assert set(wrapped.state_dict()) == set(before) | {"score_embedding.weight"}
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    new_params = {id(p) for p in wrapped.parameters()} - {id(p) for p in net.parameters()}
    assert new_params == {id(wrapped.score_embedding.weight)}
    # round trip through its own state dict
    other = condition(small_net(), at="2", embedding=ScoreEmbedding(10, (8, 1, 1)))
    other.load_state_dict(wrapped.state_dict())
    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(other(x, score=3), wrapped(x, score=3))


def test_only_embedding_gets_gradients_when_net_frozen():
    net = small_net().requires_grad_(False)
    emb = ScoreEmbedding(10, (8, 1, 1))
    wrapped = condition(net, at="2", embedding=emb)
    wrapped(torch.randn(2, 3, 4, 4), score=torch.tensor([2, 4])).square().mean().backward()
    assert all(p.grad is None for p in net.parameters())
    assert emb.weight.grad is not None
    assert emb.weight.grad[[2, 4]].abs().sum() > 0 and emb.weight.grad[[0, 1, 3]].abs().sum() == 0


def test_no_grad_and_direct_net_call_is_unconditioned():
    net = small_net()
    emb = ScoreEmbedding(10, (3, 1, 1))
    wrapped = condition(net, at="4", embedding=emb)
    with torch.no_grad():
        emb.weight.fill_(1.0)
        x = torch.randn(1, 3, 4, 4)
        assert torch.allclose(wrapped(x, score=1), net(x) + 1)
        assert not torch.allclose(net(x), wrapped(x, score=1))  # net alone is unconditioned


def test_errors_are_actionable():
    net = small_net()
    with pytest.raises(ValueError, match="did you mean"):
        condition(net, at="22", embedding=ScoreEmbedding(10, (8, 1, 1)))
    with pytest.raises(ValueError, match="mode"):
        condition(net, at="2", embedding=ScoreEmbedding(10, (8, 1, 1)), mode="film")
    with pytest.raises(ValueError, match=r"\(2, C\)"):
        condition(net, at="2", embedding=ScoreEmbedding(10, (8, 1, 1)), mode="adain")
    wrapped = condition(net, at="2", embedding=ScoreEmbedding(10, (5, 1, 1)))
    with pytest.raises(ValueError, match="does not fit"):
        wrapped(torch.randn(1, 3, 4, 4), score=1)
    with pytest.raises(ValueError, match="needs score"):
        wrapped(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="outside"):
        condition(small_net(), at="2", embedding=ScoreEmbedding(10, (8, 1, 1)))(torch.randn(1, 3, 4, 4), score=12)


def test_default_score_and_embedding_output_shape():
    emb = ScoreEmbedding(10, (4, 2, 2))
    assert emb(3, batch=5).shape == (5, 4, 2, 2)
    wrapped = condition(small_net(), at="2", embedding=ScoreEmbedding(10, (8, 1, 1)), default_score=9)
    assert wrapped(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)


def test_lazy_top_level_api():
    assert iqprior.condition is condition and iqprior.ScoreEmbedding is ScoreEmbedding


def test_ddp_wraps_conditioned_module():
    import os

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        emb = ScoreEmbedding(10, (8, 1, 1))
        model = DDP(condition(small_net().requires_grad_(False), at="2", embedding=emb))
        model(torch.randn(2, 3, 4, 4), score=5).mean().backward()
        assert emb.weight.grad is not None and emb.weight.grad[5].abs().sum() > 0
    finally:
        dist.destroy_process_group()
