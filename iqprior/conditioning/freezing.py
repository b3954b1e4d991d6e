"""Freezing for a partial fine-tune: frozen parts stay in ``eval()`` (not the injection modes: :mod:`.ops`)."""
from __future__ import annotations

from torch import nn


def freeze_modes(module: nn.Module) -> nn.Module:
    """Put in ``eval()`` every submodule that holds parameters or buffers of which none is trained.

    Run it after ``module.train()`` and after setting ``requires_grad``: the
    frozen base's BatchNorm running statistics, spectral-norm vectors and
    dropout then do not change or fire, so an embedding-only fine-tune changes
    nothing but the embedding. Parameter-free modules (dropout, activations)
    inside a trained module keep its mode. Returns ``module``.
    """
    for m in module.modules():
        params = list(m.parameters())
        if (params or any(True for _ in m.buffers())) and not any(p.requires_grad for p in params):
            m.eval()
        base = getattr(m, "wrapped_network", None)  # a ConditionedModule mirrors its network's children
        if callable(base) and not any(p.requires_grad for p in base().parameters()):
            base().training = False
    return module
