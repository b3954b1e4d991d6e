"""Full-reference metrics of the benchmark tables: PSNR, SSIM, LPIPS (pyiqa).

PSNR (RGB) and SSIM (Y channel) are pyiqa's defaults and need no file.
LPIPS (AlexNet, v0.1; Zhang et al. 2018) needs torchvision's AlexNet file,
which pyiqa's trunk always asks torchvision for (``load_state_dict_from_url``,
``weights_only=False``), and the LPIPS linear layers, which pyiqa would
unpickle with ``weights_only=False``. The network is built with
``pretrained=False`` inside :func:`iqprior.guarded.guarded_loads`, so the
trunk's file is found through the weights registry, hash-prefix checked and
read by :func:`iqprior.checkpoint.safe_load`; the linear layers are loaded
here through the same reader with a strict key check.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from iqprior.scoring.specs import HUB_CHECKPOINTS as HUB_DIR
from iqprior.scoring.specs import PYIQA as PYIQA_DIR


def weight_dir(where: str) -> Path:
    if where == PYIQA_DIR:
        try:
            from pyiqa.utils.download_util import DEFAULT_CACHE_DIR
            return Path(DEFAULT_CACHE_DIR)
        except ImportError:
            return Path(torch.hub.get_dir()) / "pyiqa"
    if where == HUB_DIR:
        return Path(torch.hub.get_dir()) / "checkpoints"
    raise ValueError(f"unknown weight location {where!r}")


def weight_path(name: str, where: str) -> Path:
    """File ``name``: through the weights registry (``IQPRIOR_WEIGHTS``, cache) first, else ``where``."""
    from iqprior import weights

    found = weights.find(name) if name in weights.REGISTRY else None
    return found if found is not None else weight_dir(where) / name


def fullref_available(metric: Any) -> tuple[bool, str]:
    """``(True, "")`` if pyiqa has ``metric`` and its files are on disk, else ``(False, reason)``."""
    try:
        import pyiqa
    except ImportError as e:
        return False, f"pyiqa is not importable ({e})"
    if metric.pyiqa_name not in pyiqa.list_models():
        return False, f"pyiqa {getattr(pyiqa, '__version__', '')} has no metric {metric.pyiqa_name!r}"
    missing = [f"{f} (in {weight_dir(w)})" for f, w in metric.weights if not weight_path(f, w).is_file()]
    if missing:
        return False, "weights not on disk: " + ", ".join(missing)
    return True, ""


def build_fullref(metric: Any, device: torch.device):
    """``f(x, gt) -> (B,)``: the full-reference score of ``x`` against ``gt`` (both RGB [0, 1])."""

    kwargs = {}
    lpips_file: Optional[Path] = None
    for f, where in metric.weights:
        if f.startswith("LPIPS_"):
            lpips_file = weight_path(f, where)
            kwargs["pretrained"] = False
    net = build_fullref_net(metric.pyiqa_name, **kwargs)
    if lpips_file is not None:
        _load_lpips_layers(net, lpips_file)
    net = net.to(device).eval()

    @torch.no_grad()
    def score(x: torch.Tensor, gt: Optional[torch.Tensor] = None) -> torch.Tensor:
        if gt is None:
            raise ValueError(f"{metric.label} is a full-reference metric and needs the ground truth")
        out = net(x.to(device), gt.to(device))
        return torch.as_tensor(out).detach().float().cpu().reshape(x.shape[0])

    return score


def build_fullref_net(pyiqa_name: str, **kwargs: Any) -> torch.nn.Module:
    """pyiqa's network for ``pyiqa_name``, built with every file it reads going through the safe reader."""
    import pyiqa

    from iqprior.guarded import guarded_loads

    with guarded_loads():
        return pyiqa.create_metric(pyiqa_name, device=torch.device("cpu"), **kwargs).net


def _load_lpips_layers(net: torch.nn.Module, path: Path) -> None:
    """Load the LPIPS linear layers (``lin*``) from ``path`` with ``weights_only=True``, strictly."""
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
