"""IQPIR parity: ``adapters.create("iqpir")`` equals the authors' network on identical weights.

Reference (``data/iqpir_reference.npz``): their ``CodeFormer(quantizer_type='dual_codebook',
score_embedding='add', aesthetic_weight=0.5)`` (fengyang1399-pixel/IQPIR@a4408c7, arch files run on CPU,
fp32), its state dict filled by :func:`seeded.seeded_state`, saved as ``{"params_ema": sd}`` and reloaded
strictly; input :func:`seeded.seeded_input` mapped to [-1, 1]; ``net(x, score=torch.tensor(s), w=w,
adain=True)``. Stored: the output ``(out + 1) / 2`` at every 8th pixel, six full-tensor statistics
(sum, sum |y|, sum y², max |y|, min, max) and the top-1 code of both codebooks. See docs/models/iqpir.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import adapters

from .seeded import seeded_input, seeded_state

REF = Path(__file__).parent / "data" / "iqpir_reference.npz"
SETTINGS = {"s9_w5": (0.9, 0.5), "s9_w0": (0.9, 0.0), "s5_w0": (0.5, 0.0)}


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REF))


@pytest.fixture(scope="module")
def released_file(ref, tmp_path_factory):
    """A file in the released layout (``{"params_ema": state_dict}``, official keys) holding the seeded weights."""
    import json

    entries = [(str(k), tuple(json.loads(str(s)))) for k, s in zip(ref["keys"], ref["shapes"])]
    path = tmp_path_factory.mktemp("iqpir") / "IQPIR_stage3.pth"
    torch.save({"params_ema": seeded_state(entries)}, path)
    return path


@pytest.fixture(scope="module")
def released(released_file):
    return adapters.create("iqpir", checkpoint=released_file, exact=True).eval()


def _check(model, ref, tag):
    score, w = SETTINGS[tag]
    x = seeded_input()
    with torch.no_grad():
        out = model.net(x * 2 - 1, score=torch.tensor(score), decode=False)  # the codes (no decoder: cheap)
        y = model(x, score=torch.tensor(score), fidelity=w).double()
    assert torch.equal(out.indices.int(), torch.from_numpy(ref[f"{tag}_idx"][..., 1]).int())
    assert torch.equal(out.indices_hq.int(), torch.from_numpy(ref[f"{tag}_idx"][..., 0]).int())
    stats = ref[f"{tag}_stats"]
    tol = 1e-4 * stats[3]
    sub = torch.from_numpy(ref[f"{tag}_sub"]).double()
    assert (y[:, :, ::8, ::8] - sub).abs().max().item() <= tol
    assert abs(y.abs().max().item() - stats[3]) <= tol
    assert abs(y.min().item() - stats[4]) <= tol and abs(y.max().item() - stats[5]) <= tol
    n = y.numel()
    assert abs(y.sum().item() - stats[0]) <= tol * n * 1e-2  # mean within 1e-6 x max|y|
    assert abs((y * y).sum().item() - stats[2]) <= 2 * tol * stats[3] * n * 1e-2


def test_released_keys_are_the_manifest(ref):
    """Our network under the official names has the released file's 517 keys and shapes, in any order."""
    import json

    from adapters.iqpir import official_key

    net = adapters.create("iqpir").net
    ours = {official_key(k): list(v.shape) for k, v in net.state_dict().items()}
    assert ours == {str(k): json.loads(str(s)) for k, s in zip(ref["keys"], ref["shapes"])}


def test_parity_readme_setting_with_fusion(released, ref):
    """score 0.9 as a float32 tensor (level 9), w = 0.5: the lookup, AdaIN and fusion blocks all run."""
    _check(released, ref, "s9_w5")


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["s9_w0", "s5_w0"])
def test_parity_other_settings(released, ref, tag):
    _check(released, ref, tag)


def test_weights_add_validates_the_released_layout(released_file):
    """``iqprior weights add IQPIR_stage3.pth`` loads the file strictly into the iqpir network."""
    from iqprior.cli.weights import check_file

    assert check_file(released_file) == "adapter iqpir"
