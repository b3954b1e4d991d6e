"""The one Transformer layer of CodeFormer and IQPFR: keys, the upstream attention path, the level norm."""
import pytest
import torch

from iqprior.models.layers.transformer import TransformerSALayer


@pytest.fixture
def tokens():
    torch.manual_seed(0)
    return torch.randn(16, 3, 32), torch.randn(16, 3, 32)  # (N, B, C) tokens and position embedding


def test_keys_are_upstream_names():
    keys = set(TransformerSALayer(32, 4, 64).state_dict())
    assert keys == {"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                    "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                    "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"}
    assert set(TransformerSALayer(32, 4, 64, upstream_attention=True).state_dict()) == keys


def test_upstream_attention_path_agrees_with_the_fused_one(tokens):
    x, pos = tokens
    fast = TransformerSALayer(32, 4, 64).eval()
    upstream = TransformerSALayer(32, 4, 64, upstream_attention=True).eval()
    upstream.load_state_dict(fast.state_dict())
    torch.testing.assert_close(upstream(x, pos), fast(x, pos), atol=1e-5, rtol=1e-5)
    # the position embedding goes to queries and keys only: without it the output differs
    assert not torch.allclose(fast(x), fast(x, pos))


def test_level_norm_starts_as_the_plain_layer_and_then_depends_on_the_level(tokens):
    x, pos = tokens
    plain = TransformerSALayer(32, 4, 64).eval()
    adaptive = TransformerSALayer(32, 4, 64, levels=10).eval()
    state = {k.replace("norm1.norm.", "norm1.").replace("norm2.norm.", "norm2."): v
             for k, v in adaptive.state_dict().items() if "level_embedding" not in k}
    plain.load_state_dict(state)
    levels = torch.tensor([0, 5, 9])
    torch.testing.assert_close(adaptive(x, pos, levels), plain(x, pos))  # zero-initialised embedding
    with torch.no_grad():
        adaptive.norm1.level_embedding.weight.normal_()
    y = adaptive(x, pos, levels)
    assert not torch.allclose(y, plain(x, pos))
    assert torch.equal(adaptive(x, pos, torch.tensor([0, 0, 0]))[:, :1], y[:, :1])  # per-sample levels
