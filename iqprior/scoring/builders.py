"""Members whose pyiqa constructor would read files itself, built here instead.

pyiqa's ``ARNIQA.__init__`` downloads and unpickles its ResNet-50 backbone
(torchvision, ``weights_only=False``), ``ARNIQA.pth`` (torch hub) and runs its
regressor with ``torch.jit.load``; ``CLIPIQA.__init__`` runs OpenAI CLIP's
TorchScript ``RN50.pt``. The builders below make the same modules with random
weights and load the files through :mod:`iqprior.checkpoint` (the regressor and
CLIP through :mod:`iqprior.torchscript`, never executed), strictly.

A builder is ``build(files) -> nn.Module`` where ``files`` maps file names to
local paths: each file given is loaded (strictly), the others keep random
weights; ``None`` = random weights.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Mapping, Optional

import torch
from torch import nn

from ..checkpoint import CheckpointError, load_strict, read_official_checkpoint

ARNIQA_FEATURES = 2048  # ResNet-50's pooled feature; the regressor reads two scales concatenated
# OpenAI CLIP RN50 (clip.model.build_model reads these from the file's shapes)
CLIP_RN50 = dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=512,
                 transformer_heads=8, transformer_layers=12)
CLIP_META_KEYS = ("input_resolution", "context_length", "vocab_size")


class LinearRegressor(nn.Module):
    """ARNIQA's regressor: a Ridge model exported by sk2torch (``weights`` (1, F), ``biases`` (1,)).

    ``forward(f)``: ``(B, F) -> (B, 1)``, ``f @ weights.T + biases``.
    """

    def __init__(self, features: int = 2 * ARNIQA_FEATURES):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(1, features))
        self.biases = nn.Parameter(torch.zeros(1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.weights.t() + self.biases


def _pick(files: Optional[Mapping[str, Path]], match: str) -> Optional[Path]:
    """The one path among ``files`` whose name starts or ends with ``match`` (``None`` if none)."""
    hits = [p for name, p in (files or {}).items() if name.endswith(match) or name.startswith(match)]
    if len(hits) > 1:
        raise ValueError(f"more than one file matching {match!r} among {sorted(files or {})}")
    return Path(hits[0]) if hits else None


def build_arniqa(files: Optional[Mapping[str, Path]] = None, regressor_dataset: str = "koniq") -> nn.Module:
    """pyiqa's ``ARNIQA`` network without its constructor's loads; ``files`` = ARNIQA.pth + regressor."""
    import torchvision
    from pyiqa.archs.arniqa_arch import ARNIQA
    from pyiqa.archs.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    net = ARNIQA.__new__(ARNIQA)
    nn.Module.__init__(net)
    net.regressor_dataset = regressor_dataset
    net.feat_dim = ARNIQA_FEATURES
    net.encoder = nn.Sequential(*list(torchvision.models.resnet50(weights=None).children())[:-1])
    net.regressor = LinearRegressor(2 * ARNIQA_FEATURES)
    net.default_mean = torch.Tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1)
    net.default_std = torch.Tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1)
    encoder, reg = _pick(files, "ARNIQA.pth"), _pick(files, "regressor_")
    if encoder is not None:
        load_arniqa_encoder(net.encoder, encoder)
    if reg is not None:  # a TorchScript archive: its tensors only
        load_strict(net.regressor, read_official_checkpoint(reg, ()), source=str(reg))
    return net.eval()


def load_arniqa_encoder(encoder: nn.Module, path: Path) -> None:
    """ARNIQA.pth keeps the encoder under ``model.`` (other heads are dropped, as pyiqa does)."""
    state = read_official_checkpoint(path, ("state_dict",))
    enc = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not enc:
        raise CheckpointError(f"{path} has no 'model.*' encoder weights: not ARNIQA.pth?")
    load_strict(encoder, enc, source=str(path))


def clip_rn50(state: Optional[Mapping[str, torch.Tensor]] = None, source: str = "RN50.pt") -> nn.Module:
    """pyiqa's CLIP (RN50) with random weights, or loaded from ``state`` (RN50.pt's tensors)."""
    from pyiqa.archs.clip_model import CLIP

    model = CLIP(**CLIP_RN50)
    if state is not None:
        own = model.state_dict()
        # the TorchScript archive also holds plain tensor attributes and three metadata scalars
        state = {k: v for k, v in state.items() if k in own and k not in CLIP_META_KEYS}
        load_strict(model, state, source=source)
    return model.float().eval()


@contextlib.contextmanager
def _clip_loader(model: nn.Module) -> Iterator[None]:
    import pyiqa.archs.clipiqa_arch as arch

    saved = arch.load
    arch.load = lambda *args, **kwargs: model  # CLIPIQA.__init__ asks for the CLIP model by name
    try:
        yield
    finally:
        arch.load = saved


def build_clipiqa(files: Optional[Mapping[str, Path]] = None, model_type: str = "clipiqa") -> nn.Module:
    """pyiqa's ``CLIPIQA`` (RN50) with CLIP read from ``RN50.pt``'s tensors (never run)."""
    from pyiqa.archs.clipiqa_arch import CLIPIQA

    path = _pick(files, "RN50.pt")
    model = clip_rn50(read_official_checkpoint(path, ()), source=str(path)) if path is not None else clip_rn50()
    with _clip_loader(model):
        net = CLIPIQA(model_type=model_type, backbone="RN50", pretrained=False)
    return net.eval()
