"""``auto`` / ``auto+``: any image-to-image model spandrel loads, behind the adapter interface.

``AutoAdapter.net`` is spandrel's network with its own keys. The adapter maps
the library's convention onto it from spandrel's descriptor: input/output
channels (grayscale models see the BT.601 luma and give it back on three
channels; RGBA models get an opaque alpha, which is dropped from the output),
range ([0, 1]; GFPGAN works in [-1, 1] as upstream), size requirements
(minimum, multiple-of, square: padded on the right and bottom as spandrel pads,
reflect then replicate, and cropped back) and the scale: the output is
``scale ×`` the input. Outputs are not clamped (spandrel's are).

``auto+`` adds the level embedding at the family's injection point
(:mod:`adapters.auto.families`), zero at init, so its output equals ``auto``'s
for every level until fine-tuned. :meth:`AutoAdapter.finetune_losses` is L1 to
the GT; for an SR model the LQ is first resized by ``1/scale`` (so Eq. 16's LQ at
the GT's size becomes the model's input size).

``save_pretrained`` records the architecture id, spandrel's hyperparameters and
the injection point in ``config.json``; ``adapters.create("auto+", checkpoint=DIR)``
rebuilds that architecture from the saved weights and checks both, strictly.
"""
from __future__ import annotations

import functools
import json
import os
import warnings
from typing import Any, Optional

import torch
import torch.nn.functional as F

from iqprior.build_bounds import bounded_build, state_counts
from iqprior.checkpoint import CheckpointError, load_strict
from iqprior.config import check_options
from iqprior.io import check_image_batch
from iqprior.levels import ScoreLike
from iqprior.padding import pad_to

from ..base import WEIGHTS_NAME, Adapter
from ..registry import builder
from .families import Family, family
from .probe import choose_feature, probe_features
from .reading import load_by_id, load_descriptor, read_state_dict

OPTIONS = ("architecture", "hyperparameters", "condition_at", "condition_shape", "mode", "tiny_family")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def jsonable(value: Any) -> Any:
    """``value`` as JSON data (tuples -> lists); ``None`` for what JSON cannot hold (classes, modules)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [jsonable(v) for v in value]
        return None


class AutoAdapter(Adapter):
    """``y = model(x, score=None, **net_kwargs)``: x ``(B, 3, H, W)`` in [0, 1], y ``(B, 3, s·H, s·W)``, not clamped.

    ``net_kwargs`` go to the network's forward where its family passes them
    (GFPGAN: ``randomize_noise=False`` uses its stored noise instead of fresh noise).
    """

    official_prefixes = ()
    task = "image"        # until a file says otherwise: FaceSR models are "face" at 512
    native_size = None

    def __init__(self, name: str, plus: bool, **options: Any):
        """``options``: ``condition_at`` (a submodule of spandrel's network), ``mode`` ("add" or "adain"),
        ``tiny_family`` (build a small random-weight network of that family, :mod:`adapters.auto.tiny`,
        instead of reading a file); ``architecture``, ``hyperparameters``, ``condition_shape`` are
        recorded by ``save_pretrained``."""
        check_options(options, OPTIONS, f"option(s) for {name}")
        if options.get("mode", "add") not in ("add", "adain"):
            raise ValueError(f"{name}: mode must be 'add' or 'adain', got {options['mode']!r:.60}")
        _check_option_types(name, options)
        if not plus:  # the "+" options are ignored by the base (so that one options dict builds both)
            options = {k: v for k, v in options.items() if k not in ("condition_at", "condition_shape", "mode")}
        super().__init__(name, options)
        self.plus = plus
        self.scale, self.in_channels, self.out_channels = 1, 3, 3
        self.size_requirements = (0, 1, False)
        self.architecture: Optional[str] = None
        self.purpose: Optional[str] = None
        self._family = Family()
        object.__setattr__(self, "_call", None)
        tiny = self.options.pop("tiny_family", None)
        if tiny is not None:  # adapters.create("auto", tiny=True): a small random-weight network, no file
            from .tiny import tiny_network

            with torch.random.fork_rng():
                state = tiny_network(str(tiny)).state_dict()
            self.install(load_descriptor(state, f"tiny {tiny}"), f"tiny {tiny}")

    # -- building from spandrel's descriptor --------------------------------------------------------
    def install(self, desc: Any, source: str) -> AutoAdapter:
        """Adopt spandrel's network and metadata; a "+" adapter then gets its embedding."""
        arch_id = str(desc.architecture.id)
        want = self.options.get("architecture")
        if want is not None and want != arch_id:
            raise CheckpointError(f"{source} holds a {arch_id} model, the saved config says {want}")
        self.architecture, self.purpose = arch_id, str(desc.purpose)
        self._family = family(arch_id) or Family()
        if self._family.fast_path is not None:
            self.fast_path = self._family.fast_path
        self.net = desc.model.float().eval()
        if self._family.prepare is not None:
            self._family.prepare(self.net)
        hp = jsonable(getattr(self.net, "hyperparameters", {}) or {})
        if "hyperparameters" in self.options and self.options["hyperparameters"] != hp:
            raise CheckpointError(f"{source}: the {arch_id} hyperparameters built from the weights differ from the "
                                  f"saved config ({_diff(self.options['hyperparameters'], hp)})")
        self.scale, self.in_channels, self.out_channels = int(desc.scale), desc.input_channels, desc.output_channels
        req = desc.size_requirements
        self.size_requirements = (int(req.minimum), int(req.multiple_of), bool(req.square))
        face = self.purpose == "FaceSR"
        self.task, self.native_size = ("face", 512) if face else ("image", None)
        call = self._family.call or getattr(desc, "_call_fn", None) or (lambda net, x: net(x))
        object.__setattr__(self, "_call", call)
        self.options.update(architecture=arch_id, hyperparameters=hp)
        if self.plus:
            self._condition(source)
        return self

    def _condition(self, source: str) -> None:
        at = self.options.get("condition_at") or self._family.at_for(self.net)
        shape = self.options.get("condition_shape")
        mode = self.options.get("mode", "add")
        if shape is None and self._family.shape is not None and at == self._family.at_for(self.net) \
                and mode == "add":
            shape = self._family.shape(self.net)
        if at is None or shape is None:
            feature = self._probe(at)
            if at is None:
                warnings.warn(f"{source}: {self.architecture} has no injection point in the auto+ table; the level "
                              f"embedding goes to {feature.name!r} {tuple(feature.shape[1:])} (the deepest, "
                              f"lowest-resolution body feature); --option condition_at=NAME chooses another",
                              stacklevel=4)
                at = feature.name
            shape = self._shape_of(feature.shape)
        self.enable_condition(at, tuple(shape), mode=mode, every_call=self._family.every_call)
        self.options.update(condition_at=at, condition_shape=list(shape))
        if mode != "add":
            self.options["mode"] = mode

    def _shape_of(self, feature: tuple[int, ...]) -> tuple[int, ...]:
        """The embedding shape for a feature: one value per channel ("add"); ``(C,)`` for "adain"."""
        from iqprior.conditioning import auto_shape
        from iqprior.conditioning.embedding import token_layout

        if self.options.get("mode", "add") == "adain":  # enable_condition makes the (2, C) table from C
            return (int(feature[token_layout(len(feature), None)]),)
        return auto_shape(feature, "add")

    def _probe(self, at: Optional[str]):
        minimum, multiple, _ = self.size_requirements
        s = max(minimum, 64)
        s = -(-s // multiple) * multiple
        x = torch.rand(2, self.in_channels, s, s, generator=torch.Generator().manual_seed(0))
        x = x * 2 - 1 if self._family.signed else x
        features = probe_features(self.net, lambda t: self._call(self.net, t), x)
        if at is not None:
            if not at or at not in features:
                from iqprior.conditioning import find_submodule
                find_submodule(self.net, at)  # unknown names get a "did you mean"
                raise ValueError(f"{self.architecture}: submodule {at!r} does not run in the forward pass")
            return features[at]
        feature = choose_feature(features, 2)
        if feature is None:
            raise ValueError(f"{self.architecture}: no feature map to condition was found; pass condition_at=NAME")
        return feature

    # -- calling --------------------------------------------------------------------------------------
    def _require_net(self) -> None:
        if self._call is None:
            raise ValueError(f"{self.adapter_name} has no network: build it with adapters.create("
                             f"{self.adapter_name!r}, checkpoint=FILE)")

    def run_net(self, *args, score: Optional[ScoreLike] = None, **kwargs):
        """As :meth:`Adapter.run_net`, through the family's call (spandrel's ``call_fn``)."""
        from iqprior.conditioning.inject import call_conditioned
        from iqprior.fastpath import is_channels_last

        self._require_net()
        x = args[0]
        input_cl = is_channels_last(x)
        x = self.prepare_input(x)
        call = functools.partial(self._call, self.net)
        with self.autocast(x.device):
            if not self.injections:
                out = call(x, **kwargs)
            else:
                out = call_conditioned(call, self._iq_key, self.embeddings(), (x,), kwargs,
                                       self._iq_default if score is None else score)
        return self.finish_output(out, input_cl)

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the network's channels and range, padded to its size requirements."""
        if self.in_channels == 1:
            x = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif self.in_channels == 4:
            x = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        elif self.in_channels != 3:
            raise ValueError(f"{self.architecture} takes {self.in_channels} input channels; auto maps 1, 3 or 4")
        y = pad_to(x, *self.size_requirements)
        if self._family.signed:
            return y * 2 - 1
        return x.clone() if y is x else y  # some networks (RCAN) scale their input in place

    def from_network(self, y: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """The network's output -> RGB [0, 1] (not clamped), cropped to ``scale·(h, w)``."""
        if self._family.signed:
            y = (y + 1) / 2
        y = y[..., : h * self.scale, : w * self.scale]
        if y.shape[1] == 1:
            y = y.expand(-1, 3, -1, -1)
        return y[:, :3]

    def forward(self, x: torch.Tensor, score: Optional[ScoreLike] = None, **net_kwargs: Any) -> torch.Tensor:
        self._require_net()
        h, w = check_image_batch(x).shape[-2:]
        return self.from_network(self.run_net(self.to_network(x), score=score, **net_kwargs), h, w)

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """L1 to ``gt``; an SR model's ``lq`` at the GT's size is resized by ``1/scale`` first (bicubic, antialiased)."""
        lq, gt = check_image_batch(lq), check_image_batch(gt, "gt")
        if self.scale > 1 and lq.shape[-2:] == gt.shape[-2:]:
            size = (max(1, gt.shape[-2] // self.scale), max(1, gt.shape[-1] // self.scale))
            lq = F.interpolate(lq, size=size, mode="bicubic", align_corners=False, antialias=True)
        y = self(lq, score=score)
        if y.shape[-2:] != gt.shape[-2:]:
            gt = gt[..., : y.shape[-2], : y.shape[-1]]
        return {"l1": F.l1_loss(y, gt)}

    # -- files ------------------------------------------------------------------------------------------
    def load_official(self, path: str | os.PathLike) -> AutoAdapter:
        """Read the model file safely, detect its architecture with spandrel and build this adapter from it."""
        if self._call is not None:
            raise ValueError(f"{self.adapter_name} already holds a {self.architecture} network (tiny=True and a "
                             f"checkpoint together?)")
        state = read_state_dict(path)
        return self.install(load_descriptor(state, str(path)), str(path))

    def load_pretrained_weights(self, directory: str | os.PathLike) -> AutoAdapter:
        """Rebuild the saved architecture from ``model.safetensors`` and load every weight strictly."""
        from pathlib import Path

        from safetensors.torch import load_file

        path = Path(directory) / WEIGHTS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME}")
        arch_id = self.options.get("architecture")
        if not arch_id:
            raise CheckpointError(f"{directory}/config.json does not record the architecture of this auto model")
        try:
            state = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read {path}: {e}") from None
        net_state = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
        if self._call is None:  # the network and the "+" embedding (condition_shape) within what the file holds
            with bounded_build(*state_counts(state), f"{directory}/config.json"):
                self.install(load_by_id(arch_id, net_state, str(path)), str(path))
        load_strict(self, state, source=str(path))
        return self

    def extra_repr(self) -> str:
        return (f"name={self.adapter_name!r}, architecture={self.architecture!r}, scale={self.scale}, "
                f"conditioned={self.is_conditioned}")


def _check_option_types(name: str, options: dict) -> None:
    """The recorded options (a saved folder's config.json) have their types: one ValueError line otherwise."""
    kinds = {"architecture": str, "condition_at": str, "tiny_family": str, "hyperparameters": dict}
    for key, kind in kinds.items():
        if options.get(key) is not None and not isinstance(options[key], kind):
            raise ValueError(f"{name}: option {key} must be a {kind.__name__}, got {options[key]!r:.60}")
    shape = options.get("condition_shape")
    if shape is not None and not (isinstance(shape, (list, tuple)) and 1 <= len(shape) <= 4 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise ValueError(f"{name}: option condition_shape must be 1 to 4 positive ints, got {shape!r:.60}")


def _diff(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:3])


@builder("auto")
def build_auto(**options: Any) -> AutoAdapter:
    """``auto``: the network of whatever architecture the model file holds (``adapters.create`` loads it)."""
    return AutoAdapter("auto", plus=False, **options)


@builder("auto+")
def build_auto_plus(**options: Any) -> AutoAdapter:
    """``auto+``: ``auto`` + a zero-initialised level embedding at the family's injection point."""
    return AutoAdapter("auto+", plus=True, **options)
