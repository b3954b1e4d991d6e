"""Full-reference metrics (``MetricSpec.full_reference``): PSNR, SSIM, LPIPS from pyiqa.

PSNR (RGB) and SSIM (Y channel) are pyiqa's defaults and need no file.
LPIPS (AlexNet, v0.1; Zhang et al. 2018) needs torchvision's AlexNet file,
which torchvision loads from the torch hub cache, and the LPIPS linear
layers, which pyiqa would unpickle with ``weights_only=False``: it is built
with ``pretrained=False`` and that file (``load=True`` in its spec) is
loaded here with ``weights_only=True`` and a strict key check.

Weight files are looked for where :func:`iqprior.scoring.members.weight_dir`
says, as for the no-reference members.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch

from .members import missing_weights, weight_dir
from .specs import MetricSpec, get_spec

__all__ = ["fullref_available", "build_fullref"]

FullRefFn = Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def _full_reference_spec(spec: MetricSpec | str) -> MetricSpec:
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if not spec.full_reference:
        raise ValueError(f"{spec.name!r} is a no-reference metric; build it with iqprior.scoring.build_member")
    return spec


def fullref_available(spec: MetricSpec | str) -> tuple[bool, str]:
    """``(True, "")`` if pyiqa has the metric and its files are on disk, else ``(False, reason)``."""
    spec = _full_reference_spec(spec)
    try:
        import pyiqa
    except ImportError as e:
        return False, f"pyiqa is not importable ({e})"
    if spec.pyiqa_name not in pyiqa.list_models():
        return False, f"pyiqa {getattr(pyiqa, '__version__', '')} has no metric {spec.pyiqa_name!r}"
    missing = missing_weights(spec)
    if missing:
        return False, "weights not on disk: " + ", ".join(f"{w.file} (in {weight_dir(w)})" for w in missing)
    return True, ""


def build_fullref(spec: MetricSpec | str, device: torch.device | str = "cpu") -> FullRefFn:
    """``f(x, gt) -> (B,)`` raw scores of ``x`` against ``gt``, both ``(B, 3, H, W)`` RGB [0, 1] (no gradient).

    Direction and range are the spec's (``lower_better``, ``score_range``).
    Call :func:`fullref_available` first; this raises whatever pyiqa raises.
    """
    import pyiqa

    spec = _full_reference_spec(spec)
    device = torch.device(device)
    kwargs = dict(spec.create_kwargs)
    own = [weight_dir(w) / w.file for w in spec.weights if w.load]
    if own:
        kwargs["pretrained"] = False
    net = pyiqa.create_metric(spec.pyiqa_name, device=torch.device("cpu"), **kwargs).net
    for path in own:
        _load_lpips_layers(net, path)
    net = net.to(device).eval()

    @torch.no_grad()
    def score(x: torch.Tensor, gt: Optional[torch.Tensor] = None) -> torch.Tensor:
        if gt is None:
            raise ValueError(f"{spec.name} is a full-reference metric and needs the ground truth")
        out = net(x.to(device), gt.to(device))
        return torch.as_tensor(out).detach().float().cpu().reshape(x.shape[0])

    return score


def _load_lpips_layers(net: torch.nn.Module, path: Path) -> None:
    """Load the LPIPS linear layers (``lin*``) from ``path`` with ``weights_only=True``, strictly.

    The only full-reference file iqprior loads itself (the spec's ``load=True`` file).
    """
    from iqprior.checkpoint import load_strict, read_official_checkpoint

    state = read_official_checkpoint(path, ())
    own = net.state_dict()
    # the file holds only the linear layers; the trunk (AlexNet) came from torchvision
    full = {k: v for k, v in own.items() if not k.startswith("lin")}
    full.update(state)
    # pyiqa registers each layer twice, as lin<i> and in the list lins.<i>; the file names lin<i> only
    for k in own:
        if k.startswith("lins."):
            i, rest = k[len("lins."):].split(".", 1)
            if f"lin{i}.{rest}" in state:
                full[k] = state[f"lin{i}.{rest}"]
    load_strict(net, full, source=str(path))
