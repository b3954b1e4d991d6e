"""Where to add the level embedding in a network nobody wrote an entry for: one probe forward.

The paper (IQPFR, arXiv 2503.09294, §3.3, §4.3) adds the level embedding to
the deepest feature that enters the restoration body or decoder (CodeFormer's
``Z_l``). For an architecture without an entry in :data:`adapters.auto.families.FAMILIES`
the same feature is found on one forward pass of a small random input: every
submodule's output is recorded, and the chosen one is

1. called exactly once per forward (a shared module would be conditioned twice),
2. a feature map ``(B, C, h, w)`` that keeps the batch axis, with more than 4
   channels (not an image) and not the network's output,
3. at the lowest spatial resolution seen (the bottleneck of a U-Net; the body
   of a network that works at one resolution),
4. among those, the last to finish, preferring containers (a whole body or
   middle block finishes after its blocks) over single layers. Global-pooling
   outputs (1 x 1 maps, e.g. channel attention) are not body features.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn


@dataclass(frozen=True)
class Feature:
    """One submodule output seen on the probe forward."""

    name: str
    shape: tuple[int, ...]   # with the probe's batch axis
    calls: int
    order: int               # when its forward finished (0 = first)
    subtree: int             # number of modules below it (itself included)


def probe_features(net: nn.Module, run: Callable[[torch.Tensor], object], x: torch.Tensor) -> dict[str, Feature]:
    """``{submodule name: Feature}`` of the tensor outputs of ``net``'s submodules on ``run(x)``.

    The entry ``""`` is the network itself.
    ``run`` calls the network (e.g. spandrel's ``call_fn``); it runs under
    ``no_grad`` with the global RNG state restored afterwards.
    """
    seen: dict[str, list] = {}
    counter = [0]

    def hook(name):
        def record(module, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) and output else output
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            if name in seen:
                seen[name][1] += 1
            else:
                seen[name] = [shape, 1, counter[0]]
            seen[name][2] = counter[0]
            counter[0] += 1
        return record
    modules = dict(net.named_modules())  # "" = the network itself (its output is never chosen)
    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        with torch.no_grad(), torch.random.fork_rng():
            run(x)
    finally:
        for h in handles:
            h.remove()
    sizes = {n: sum(1 for _ in m.modules()) for n, m in modules.items()}
    return {n: Feature(n, s, c, o, sizes[n]) for n, (s, c, o) in seen.items()}


def choose_feature(features: dict[str, Feature], batch: int) -> Optional[Feature]:
    """The deepest, lowest-resolution body feature (rules in the module docstring), or ``None``."""
    root = features.get("")
    output_shape = root.shape if root is not None else None
    cands = [f for f in features.values()
             if f.name and f.calls == 1 and len(f.shape) == 4 and f.shape[0] == batch and f.shape[1] > 4
             and f.shape[2] * f.shape[3] > 1 and f.shape != output_shape]
    if not cands:
        return None
    lowest = min(f.shape[2] * f.shape[3] for f in cands)
    cands = [f for f in cands if f.shape[2] * f.shape[3] == lowest]
    return max(cands, key=lambda f: (f.subtree > 1, f.order))
