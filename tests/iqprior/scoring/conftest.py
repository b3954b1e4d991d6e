"""Shared checks of the scoring tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def check_weightless_member():
    """``check(name, good, bad)``: ``name`` is a weightless, differentiable, lower-is-better member whose
    ensemble score (flipped) ranks ``good`` above ``bad``, with gradients reaching the input."""
    import iqprior
    from iqprior.scoring import SPECS

    def check(name: str, good: torch.Tensor, bad: torch.Tensor) -> None:
        spec = SPECS[name]
        assert spec.lower_better and spec.differentiable and not spec.needs_weights
        scorer = iqprior.create_scorer([name], device="cpu")
        x = torch.cat([good, bad]).requires_grad_(True)
        s = scorer(x, grad=True, clip=False)
        assert s[0] > s[1]                                            # flipped: higher is better
        s.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    return check
