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


def test_ddp_wraps_conditioned_module(monkeypatch):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # restored after the test
    monkeypatch.setenv("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        emb = ScoreEmbedding(10, (8, 1, 1))
        model = DDP(condition(small_net().requires_grad_(False), at="2", embedding=emb))
        model(torch.randn(2, 3, 4, 4), score=5).mean().backward()
        assert emb.weight.grad is not None and emb.weight.grad[5].abs().sum() > 0
    finally:
        dist.destroy_process_group()


# -- issue 12: state dicts, several points, repeated calls, shapes, scores ------------------------------------
import numpy as np  # noqa: E402


class WithNetChild(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Conv2d(3, 4, 1)
        self.head = nn.Conv2d(4, 3, 1)
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("offset", torch.zeros(1))
        self.register_buffer("scratch", torch.zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.net(x)) * self.scale + self.offset


def _names(m):
    return sorted([n for n, _ in m.named_parameters()] + [n for n, _ in m.named_buffers() if n != "scratch"])


def test_state_dict_keys_equal_parameter_names_for_any_child_names():
    net = WithNetChild()
    w = condition(net, at="net", embedding=ScoreEmbedding(10, (4, 1, 1)))
    keys = sorted(w.state_dict())
    assert keys == _names(w) == sorted(list(net.state_dict()) + ["score_embedding.weight"])
    assert w.net is w._modules["net"]  # the keys' `net` is the child; the network is wrapped_network()
    assert w.wrapped_network() is net
    with torch.no_grad():
        w.score_embedding.weight.normal_()
    other = condition(WithNetChild(), at="net", embedding=ScoreEmbedding(10, (4, 1, 1)))
    other.load_state_dict(w.state_dict(), strict=True)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(other(x, score=4), w(x, score=4))
    bare = WithNetChild()  # a "+" state dict loads into the bare network with strict=False
    missing, unexpected = bare.load_state_dict(w.state_dict(), strict=False)
    assert missing == [] and unexpected == ["score_embedding.weight"]


def test_several_injection_points_keep_their_own_keys():
    x = torch.randn(2, 3, 4, 4)
    two = condition(small_net(), at=["0", "2"], embedding=[ScoreEmbedding(10, (8, 1, 1)), ScoreEmbedding(10, (8, 1, 1))])
    assert {"score_embedding.weight", "score_embedding_1.weight"} <= set(two.state_dict())
    nested = condition(condition(small_net(), at="0", embedding=ScoreEmbedding(10, (8, 1, 1))), at="2",
                       embedding=ScoreEmbedding(10, (8, 1, 1)))
    assert sorted(two.state_dict()) == sorted(nested.state_dict()) == _names(nested)
    with torch.no_grad():
        two.score_embedding.weight.normal_()
        two.score_embedding_1.weight.normal_()
    nested.load_state_dict(two.state_dict(), strict=True)
    assert torch.equal(nested(x, score=3), two(x, score=3))
    net = small_net()
    manual = net[4](net[3](net[2](net[1](net[0](x) + two.score_embedding.weight[3].view(1, 8, 1, 1)))
                           + two.score_embedding_1.weight[3].view(1, 8, 1, 1)))
    assert torch.allclose(two(x, score=3), manual, atol=1e-6)
    with pytest.raises(ValueError, match="one ScoreEmbedding each"):
        condition(small_net(), at=["0", "2"], embedding=ScoreEmbedding(10, (8, 1, 1)))


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.act(self.conv(x)))


def test_module_running_twice_is_an_error_unless_every_call():
    x = torch.randn(1, 3, 2, 2)
    w = condition(Shared(), at="act", embedding=ScoreEmbedding(10, (4, 1, 1)))
    with pytest.raises(RuntimeError, match="ran 2 times.*every_call=True"):
        w(x, score=1)
    w = condition(Shared(), at="act", embedding=ScoreEmbedding(10, (4, 1, 1)), every_call=True)
    with torch.no_grad():
        w.score_embedding.weight[1].fill_(0.5)
    net = w.wrapped_network()
    assert torch.allclose(w(x, score=1), torch.tanh(torch.tanh(net.conv(x)) + 0.5) + 0.5)


def test_shapes_that_broadcast_along_the_wrong_axis_are_refused():
    net = nn.Sequential(nn.Conv2d(3, 4, 1))
    x = torch.randn(2, 3, 5, 4)  # W == C == 4: (C,) would broadcast along W
    w = condition(net, at="0", embedding=ScoreEmbedding(10, (4,)))
    with pytest.raises(ValueError, match=r"does not fit.*\(2, 4, 5, 4\).*\(4, 1, 1\)"):
        w(x, score=1)
    with pytest.raises(ValueError, match="does not fit"):
        condition(net, at="0", embedding=ScoreEmbedding(10, (4, 5)))(x, score=1)
    for shape in [(4, 1, 1), (4, 5, 4), (1, 5, 1)]:
        assert condition(net, at="0", embedding=ScoreEmbedding(10, shape))(x, score=1).shape == (2, 4, 5, 4)


class Tokens(nn.Module):
    def __init__(self, c=6):
        super().__init__()
        self.proj = nn.Linear(c, c)
        self.out = nn.Linear(c, c)

    def forward(self, x):  # x: (B, L, C)
        return self.out(self.proj(x))


def test_token_features_add_and_adain_and_auto_shapes():
    x = torch.randn(2, 5, 6)
    w = condition(Tokens(), at="proj")  # automatic: (1, C) for tokens
    y0 = w(x, score=0)
    assert w.score_embedding.shape == (1, 6) and w.score_embedding.weight.shape == (10, 6)
    with torch.no_grad():
        w.score_embedding.weight[3].copy_(torch.arange(6.0))
    net = w.wrapped_network()
    assert torch.allclose(w(x, score=3), net.out(net.proj(x) + torch.arange(6.0)), atol=1e-6)
    assert torch.equal(y0, net(x))
    a = condition(Tokens(), at="proj", embedding=ScoreEmbedding.for_adain(10, None), mode="adain")
    a(x, score=0)
    assert a.score_embedding.shape == (2, 6)
    with torch.no_grad():
        a.score_embedding.weight[2].copy_(torch.cat([torch.ones(6), torch.zeros(6)]))
    f = a.wrapped_network().proj(x)
    mu = f.mean(dim=1, keepdim=True)  # statistics over the tokens, per channel
    assert torch.allclose(a(x, score=2), a.wrapped_network().out(f + (f - mu)), atol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(2, 5, 6\).*channel_axis=1"):
        condition(Tokens(), at="proj", embedding=ScoreEmbedding.for_adain(10, 5), mode="adain")(x, score=1)
    from iqprior.conditioning import auto_shape
    assert auto_shape((2, 8)) == (8,) and auto_shape((2, 8, 3, 3)) == (8, 1, 1) and auto_shape((2, 7, 8)) == (1, 8)
    assert auto_shape((2, 8, 7), channel_axis=1) == (8, 1) and auto_shape((2, 8, 3, 3), "adain") == (2, 8)


def test_auto_embedding_loads_before_its_first_call():
    src = condition(small_net(), at="2")
    x = torch.randn(1, 3, 4, 4)
    src(x, score=0)
    with torch.no_grad():
        src.score_embedding.weight.normal_()
    dst = condition(small_net(), at="2")
    dst.load_state_dict(src.state_dict())
    assert torch.equal(dst(x, score=5), src(x, score=5))


def test_numpy_and_tensor_scores():
    w = condition(small_net(), at="2", embedding=ScoreEmbedding(10, (8, 1, 1)))
    with torch.no_grad():
        w.score_embedding.weight.normal_()
    x = torch.randn(2, 3, 4, 4)
    ref = w(x, score=7)
    for s in [np.int64(7), np.int32(7), np.float32(0.75), 0.75, torch.tensor(7), torch.tensor([7, 7]),
              np.array([7, 7]), np.array(0.71)]:
        assert torch.equal(w(x, score=s), ref), s
    with pytest.raises(TypeError, match="bool"):
        w(x, score=np.bool_(True))
    with pytest.raises(ValueError, match="outside"):
        w(x, score=np.int64(10))


def test_feature_without_batch_axis_takes_one_score():
    class Windows(nn.Module):  # folds the batch into windows, as Swin attention does
        def __init__(self):
            super().__init__()
            self.attn = nn.Linear(4, 4)

        def forward(self, x):  # (B, 4, 4) -> windows (2B, 2, 4)
            return self.attn(x.reshape(-1, 2, 4)).reshape(x.shape)
    w = condition(Windows(), at="attn")
    x = torch.randn(3, 4, 4)
    assert w(x, score=2).shape == (3, 4, 4)
    with pytest.raises(ValueError, match=r"shape \(6, 2, 4\).*not the batch of 3 scores"):
        w(x, score=torch.tensor([1, 2, 3]))


def test_replicas_and_threads_each_get_their_level():
    import threading

    from adapters.testing import cpu_replicas  # the CPU stand-in for DataParallel's replicate
    w = condition(small_net(), at="2", embedding=ScoreEmbedding(10, (8, 1, 1)))
    with torch.no_grad():
        w.score_embedding.weight.normal_()
    x = torch.randn(2, 3, 4, 4)
    ref = {s: w(x, score=s).detach() for s in (1, 8)}
    barrier = threading.Barrier(2, timeout=30)

    def both_inside(module, inputs):  # both calls are inside the network before either goes on
        barrier.wait()
    h = w.wrapped_network()[2].register_forward_pre_hook(both_inside)
    out = {}
    reps = cpu_replicas(w, 2)
    ts = [threading.Thread(target=lambda r=r, s=s: out.__setitem__(s, r(x, score=s))) for r, s in zip(reps, (1, 8))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    h.remove()
    assert all(torch.allclose(out[s].detach(), ref[s]) for s in (1, 8))


@pytest.mark.gpu
def test_dataparallel_on_gpus():
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs (on the CPU, see the replica test above)")
    w = condition(small_net(), at="2", embedding=ScoreEmbedding(10, (8, 1, 1))).cuda()
    with torch.no_grad():
        w.score_embedding.weight.normal_()
    x = torch.randn(4, 3, 4, 4, device="cuda")
    score = torch.tensor([1, 8, 1, 8], device="cuda")
    out = torch.nn.DataParallel(w)(x, score=score)
    assert torch.allclose(out, w(x, score=score), atol=1e-5)
