"""The entropy member equals pyiqa's ``entropy`` bit for bit (its histogram computed another way)."""
from __future__ import annotations

import pytest
import torch

from iqprior.scoring import create_scorer
from iqprior.scoring.entropy import grey_entropy


def test_equals_pyiqa_entropy_bit_for_bit():
    pytest.importorskip("pyiqa")
    from pyiqa.archs.entropy_arch import entropy as pyiqa_entropy

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.rand(2, 3, 40, 56, generator=g),
                   torch.full((1, 3, 40, 56), 0.5),                              # one grey level: entropy 0
                   torch.rand(1, 3, 40, 56, generator=g).pow(4)])              # skewed histogram
    ours = grey_entropy(x)
    assert torch.equal(ours, pyiqa_entropy(x))
    assert ours[2] == 0 and (ours[[0, 1, 3]] > 3).all()
    for i in range(x.shape[0]):                                                 # batching changes nothing
        assert torch.equal(grey_entropy(x[i:i + 1]), ours[i:i + 1])


def test_member_is_the_fast_entropy_and_rejects_bad_input():
    scorer = create_scorer("entropy", device="cpu")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(scorer.raw(x)["entropy"], grey_entropy(x))
    with pytest.raises(ValueError):
        grey_entropy(torch.rand(1, 1, 8, 8))
