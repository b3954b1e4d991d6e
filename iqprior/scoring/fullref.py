"""Full-reference metrics (``MetricSpec.full_reference``): PSNR, SSIM, LPIPS from pyiqa.

PSNR (RGB) and SSIM (Y channel) are pyiqa's defaults and need no file.
LPIPS (AlexNet, v0.1; Zhang et al. 2018) needs torchvision's AlexNet file,
which pyiqa's trunk always asks torchvision for (``load_state_dict_from_url``,
``weights_only=False``), and the LPIPS linear layers, which pyiqa would
unpickle with ``weights_only=False``. The network is built with
``pretrained=False`` inside :func:`iqprior.guarded.guarded_loads`, so the
trunk's file is found through the weights registry, hash-prefix checked and
read by :func:`iqprior.checkpoint.safe_load`; the linear layers (``load=True``
in the spec) are loaded here through the same reader with a strict key check.

Weight files are looked for where :func:`iqprior.scoring.members.weight_path`
says (the weights registry first), as for the no-reference members.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch

from .members import missing_weights, weight_dir, weight_path
from .specs import MetricSpec, get_spec

__all__ = ["fullref_available", "build_fullref", "build_fullref_net", "check_lpips_layers"]

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
    spec = _full_reference_spec(spec)
    device = torch.device(device)
    kwargs = dict(spec.create_kwargs)
    own = [weight_path(w) for w in spec.weights if w.load]
    if own:
        kwargs["pretrained"] = False
    net = build_fullref_net(spec.pyiqa_name, **kwargs)
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


def build_fullref_net(pyiqa_name: str, **kwargs) -> torch.nn.Module:
    """pyiqa's network for ``pyiqa_name``, built with every file it reads going through the safe reader."""
    import pyiqa

    from iqprior.guarded import guarded_loads

    with guarded_loads():
        return pyiqa.create_metric(pyiqa_name, device=torch.device("cpu"), **kwargs).net


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


#: LPIPS trunk channels per layer (pyiqa's ``LPIPS.chns``), keyed by the net in the file name
LPIPS_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def check_lpips_layers(path: Path) -> None:
    """Strict key/shape check of an ``LPIPS_v0.1_<net>-*.pth`` file against pyiqa's linear layers."""
    from pyiqa.archs.lpips_arch import NetLinLayer

    from iqprior.checkpoint import CheckpointError, load_strict, read_official_checkpoint

    net = path.name.split("_")[2].split("-")[0] if path.name.count("_") >= 2 else ""
    if net not in LPIPS_CHANNELS:
        raise CheckpointError(f"{path.name}: cannot tell the LPIPS trunk ({', '.join(LPIPS_CHANNELS)}) from the name")
    layers = torch.nn.Module()
    for i, c in enumerate(LPIPS_CHANNELS[net]):
        layers.add_module(f"lin{i}", NetLinLayer(c, use_dropout=True))
    load_strict(layers, read_official_checkpoint(path, ()), source=str(path))
