"""The CodeFormer VQGAN re-implementation: keys, shapes, quantizer behaviour."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from iqprior.models.vqgan import VectorQuantizer, VQAutoEncoder, VQGANConfig

MANIFEST = Path("/work/shared/reference/codeformer_vqgan_manifest.json")
TINY = VQGANConfig(img_size=64, nf=8, ch_mult=(1, 2, 2, 4), attn_resolutions=(8,), emb_dim=16, codebook_size=32)


def test_tiny_forward_shapes_and_grad():
    vq = VQAutoEncoder(TINY)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    rec, loss, info = vq(x)
    assert rec.shape == x.shape and loss.ndim == 0
    assert info["indices"].shape == (2, 64) and info["indices"].dtype == torch.long
    assert TINY.latent_shape == (16, 8, 8)
    loss.backward()
    assert vq.encoder.blocks[0].weight.grad is not None
    assert vq.quantize.embedding.weight.grad is not None


def test_quantizer_picks_nearest_code_and_straight_through():
    q = VectorQuantizer(codebook_size=4, emb_dim=2, beta=0.25)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    z = torch.tensor([[0.9, 0.1], [0.1, 0.8], [4.0, 4.5], [-0.2, 0.1]]).T.reshape(1, 2, 2, 2).requires_grad_()
    z_q, loss, info = q(z)
    assert info["indices"].tolist() == [[1, 2, 3, 0]]
    expected = q.embedding.weight[info["indices"][0]].T.reshape(1, 2, 2, 2)
    torch.testing.assert_close(z_q, expected)
    mse = ((z - expected) ** 2).mean()
    torch.testing.assert_close(loss, (1 + 0.25) * mse)          # Eq. 6: both terms have the same value
    z_q.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))     # straight-through
    feat = q.get_codebook_feat(info["indices"], (1, 2, 2, 2))
    torch.testing.assert_close(feat, expected)


def test_codebook_loss_gradient_split_follows_eq6():
    q = VectorQuantizer(codebook_size=3, emb_dim=2, beta=0.25)
    z = torch.randn(1, 2, 1, 1, requires_grad=True)
    _, loss, info = q(z)
    loss.backward()
    code = q.embedding.weight[info["indices"].item()].detach()
    diff = z.detach().view(2) - code
    # d/dz of beta*||z - sg(e)||^2 (mean over 2 elements) and d/de of ||sg(z) - e||^2
    torch.testing.assert_close(z.grad.view(2), 0.25 * diff)
    torch.testing.assert_close(q.embedding.weight.grad[info["indices"].item()], -diff)


def test_decode_indices_matches_forward():
    vq = VQAutoEncoder(TINY).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        rec, _, info = vq(x)
        # forward decodes z + (z_q - z): equal to the codes up to float rounding
        torch.testing.assert_close(vq.decode_indices(info["indices"]), rec, atol=1e-4, rtol=1e-4)


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        VQGANConfig(img_size=100, ch_mult=(1, 2, 2, 4))
    with pytest.raises(TypeError):
        VQAutoEncoder(TINY, nf=4)


@pytest.mark.skipif(not MANIFEST.is_file(), reason="reference manifest not available")
def test_full_size_keys_and_shapes_equal_manifest():
    entries = json.loads(MANIFEST.read_text())["entries"]
    with torch.device("meta"):
        vq = VQAutoEncoder()
    got = [(k, list(v.shape)) for k, v in vq.state_dict().items()]
    assert got == [(e[0], e[1]) for e in entries]
