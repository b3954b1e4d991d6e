"""Full-reference metrics of the benchmark tables: PSNR, SSIM, LPIPS (pyiqa).

PSNR (RGB) and SSIM (Y channel) are pyiqa's defaults and need no file.
LPIPS (AlexNet, v0.1; Zhang et al. 2018) needs torchvision's AlexNet file,
which torchvision loads from the torch hub cache, and the LPIPS linear
layers, which pyiqa would unpickle with ``weights_only=False``: it is built
with ``pretrained=False`` and that file is loaded here with
``weights_only=True`` and a strict key check.
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


def fullref_available(metric: Any) -> tuple[bool, str]:
    """``(True, "")`` if pyiqa has ``metric`` and its files are on disk, else ``(False, reason)``."""
    try:
        import pyiqa
    except ImportError as e:
        return False, f"pyiqa is not importable ({e})"
    if metric.pyiqa_name not in pyiqa.list_models():
        return False, f"pyiqa {getattr(pyiqa, '__version__', '')} has no metric {metric.pyiqa_name!r}"
    missing = [f"{f} (in {weight_dir(w)})" for f, w in metric.weights if not (weight_dir(w) / f).is_file()]
    if missing:
        return False, "weights not on disk: " + ", ".join(missing)
    return True, ""


def build_fullref(metric: Any, device: torch.device):
    """``f(x, gt) -> (B,)``: the full-reference score of ``x`` against ``gt`` (both RGB [0, 1])."""
    import pyiqa

    kwargs = {}
    lpips_file: Optional[Path] = None
    for f, where in metric.weights:
        if f.startswith("LPIPS_"):
            lpips_file = weight_dir(where) / f
            kwargs["pretrained"] = False
    net = pyiqa.create_metric(metric.pyiqa_name, device=torch.device("cpu"), **kwargs).net
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
