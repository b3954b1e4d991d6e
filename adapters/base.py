"""The common shape of every adapter.

An :class:`Adapter` wraps one upstream network, kept as ``self.net`` with the
official ``state_dict`` keys, and maps the library's convention (RGB float
``(B, 3, H, W)`` in [0, 1], output not clamped) to the network's own.

A "+" adapter is the same adapter after :meth:`Adapter.enable_condition`: a
zero-initialised :class:`iqprior.ScoreEmbedding` is injected at one internal
feature by a forward hook (as :func:`iqprior.condition` does); ``net`` is not
edited. The adapter's ``state_dict`` is then ``net.*`` + ``score_embedding.weight``
(further injection points: ``score_embedding_1.weight``...), equal to its
``named_parameters()`` names. Check any adapter with
:func:`adapters.testing.check_adapter`.

Saved checkpoints are directories (diffusers style): ``config.json`` with the
adapter name and its constructor options, ``model.safetensors`` with the
adapter's ``state_dict``.

Inference runs on the adapter's **fast path** (:attr:`Adapter.fast_path`, see
:mod:`iqprior.fastpath`: channels-last memory format, fused attention) unless
``exact`` is set (``adapters.create(name, exact=True)``, ``--exact``), which
keeps the upstream-identical numerics; the fast path is taken only in eval
mode, so training always runs the exact one. ``precision`` (``"fp32"``,
``"bf16"``, ``"fp16"``) autocasts the network (opt-in; outputs come back in
float32). Both are run-time settings, not saved with the weights.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from iqprior.checkpoint import WRAPPER_KEYS, CheckpointError, load_strict, match_prefix, read_official_checkpoint
from iqprior.conditioning import ConditionedModule, Injection, ScoreEmbedding
from iqprior.conditioning.context import new_key
from iqprior.conditioning.freezing import freeze_modes
from iqprior.conditioning.inject import attach, call_conditioned, free_embedding_name
from iqprior.fastpath import (
    EXACT,
    FastPath,
    autocast,
    check_precision,
    contiguous,
    is_channels_last,
    set_fast_path,
    to_channels_last,
)
from iqprior.levels import DEFAULT_LEVEL, DEFAULT_LEVELS, ScoreLike

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_SCORE = DEFAULT_LEVEL  # the paper conditions on the top level at inference (App. 6.1.2)


class Adapter(nn.Module):
    """Base class: ``y = adapter(x, score=None)``, x and y RGB in [0, 1] (y not clamped).

    Subclasses set ``self.net`` and implement :meth:`forward`, calling the
    network through :meth:`run_net` so that a "+" variant's condition applies.
    Class attributes (the defaults of a user adapter; a built-in adapter's
    ``task``, ``controls`` and ``export_refused`` come from its
    :class:`~adapters.specs.AdapterSpec`, set by :func:`adapters.registry.configure`):

    - ``official_prefixes``: key prefixes an official file may carry that
      :func:`iqprior.checkpoint.match_prefix` should strip or add.
    - ``official_wrapper_keys``: where the official file keeps its state dict
      (default: the one list, :data:`iqprior.checkpoint_format.WRAPPER_KEYS`).
    - ``task``: ``"face"`` (restore aligns faces in whole photos) or ``"image"``
      (the whole image is processed at any size, e.g. underwater models).
    - ``native_size``: the square size the network works at, or ``None``.
    - ``controls``: per-call float options of :meth:`forward` (keywords, taking a
      tensor too) that an ONNX export keeps as optional inputs, e.g. CodeFormer's
      ``fidelity``; the default of each is the attribute of the same name.
    - ``export_refused``: ``None``, or why ``iqprior export`` cannot export the model.
    """

    task: str = "face"                 # "face" (aligned 512 crops / whole photos via face detection) or "image"
    native_size: Optional[int] = 512   # square input size the network expects; None = any size
    controls: tuple[str, ...] = ()     # per-call float options kept as inputs by an ONNX export
    export_refused: Optional[str] = None  # why the model cannot be exported to ONNX (None: it can)
    official_prefixes: tuple[str, ...] = ("module.",)
    official_wrapper_keys: tuple[str, ...] = WRAPPER_KEYS  # the one list (iqprior.checkpoint_format)
    fast_path: FastPath = EXACT        # the fast path's measures; registry.configure sets the spec table's
    exact: bool = False                # True: always the exact (upstream-identical) path
    precision: str = "fp32"            # autocast of the network: "fp32", "bf16" or "fp16"

    def __init__(self, name: str, options: Optional[dict[str, Any]] = None):
        super().__init__()
        self.adapter_name = name
        self.options: dict[str, Any] = dict(options or {})
        object.__setattr__(self, "_iq_key", new_key())
        object.__setattr__(self, "_iq_specs", ())
        object.__setattr__(self, "_iq_default", None)
        object.__setattr__(self, "_fast_state", EXACT)  # the path the modules are on now

    # -- fast path and precision ----------------------------------------------------------
    def set_exact(self, exact: bool = True) -> Adapter:
        """``True``: run the exact (upstream-identical) path; ``False``: the fast path (the default)."""
        if not isinstance(exact, bool):
            raise TypeError(f"exact must be True or False, got {exact!r}")
        self.exact = exact
        return self

    def set_precision(self, precision: str) -> Adapter:
        """Autocast the network to ``"bf16"`` / ``"fp16"``, or ``"fp32"`` (none, the default)."""
        self.precision = check_precision(precision)
        return self

    @property
    def active_path(self) -> FastPath:
        """The path the next inference call takes (:data:`iqprior.fastpath.EXACT` when exact or training)."""
        return EXACT if (self.exact or self.training) else self.fast_path

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """Put the modules on :attr:`active_path` and lay out ``x`` for it (channels-last when it says so)."""
        path = self.active_path
        if path != self._fast_state:
            set_fast_path(self, path)
            object.__setattr__(self, "_fast_state", path)
        return to_channels_last(x) if path.channels_last else x

    def autocast(self, device: torch.device | str):
        """The autocast context of :attr:`precision` on ``device``."""
        return autocast(device, self.precision)

    def compile_for_inference(self, **kwargs: Any) -> Adapter:
        """``torch.compile`` the network(s) in place (state-dict keys unchanged); worth it for many calls."""
        self.net.compile(**kwargs)
        return self

    # -- conditioning ("+" variants) ------------------------------------------------------
    def enable_condition(self, at: str, shape: Optional[tuple[int, ...]] = None, levels: int = DEFAULT_LEVELS,
                         mode: str = "add", default_score: ScoreLike = DEFAULT_SCORE, *,
                         every_call: bool = False, channel_axis: Optional[int] = None) -> str:
        """Add a level embedding at ``net``'s submodule ``at`` (this makes the "+" variant).

        ``shape``: the embedding's shape (see :func:`iqprior.condition`);
        ``None`` takes it from the feature on the first call (one value per
        channel). Call again for further injection points: each gets its own
        embedding, ``score_embedding``, ``score_embedding_1``... Returns the
        embedding's attribute name (its ``state_dict`` prefix).
        """
        if mode == "adain":
            emb = ScoreEmbedding.for_adain(levels, None if shape is None else shape[0])
        else:
            emb = ScoreEmbedding(levels, shape)
        name = free_embedding_name(lambda n: hasattr(self, n))
        spec = Injection(at, name, mode, every_call, channel_axis)
        attach(self.net, self._iq_key, [spec], start=len(self._iq_specs))
        setattr(self, name, emb)  # registered here: the adapter's keys are net.* + <name>.weight
        object.__setattr__(self, "_iq_specs", self._iq_specs + (spec,))
        if self._iq_default is None:
            object.__setattr__(self, "_iq_default", default_score)
        return name

    def condition_shape(self) -> Optional[tuple[int, ...]]:
        """The "+" level embedding's shape for this network's configuration (what
        :func:`adapters.plus.plus_builder` passes to :meth:`enable_condition`); ``None``:
        one value per channel of the feature, found on the first call."""
        return None

    @property
    def injections(self) -> tuple[Injection, ...]:
        """The conditioned submodules of ``net`` (empty for a base adapter)."""
        return self._iq_specs

    def embeddings(self) -> list[ScoreEmbedding]:
        """The level embeddings, in the order of :attr:`injections`."""
        return [getattr(self, s.name) for s in self._iq_specs]

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The weights of :meth:`embeddings` (what an embedding-only fine-tune trains)."""
        return [e.weight for e in self.embeddings()]

    @property
    def conditioned(self) -> Optional[ConditionedModule]:
        """``net`` with its embeddings as a :class:`ConditionedModule` (same objects), else ``None``."""
        if not self._iq_specs:
            return None
        return ConditionedModule.view(self.net, self._iq_key, self._iq_specs, self.embeddings(), self._iq_default)

    @property
    def is_conditioned(self) -> bool:
        """Whether level embeddings were injected into ``net`` (a "+" adapter)."""
        return bool(self._iq_specs)

    @property
    def takes_level(self) -> bool:
        """Whether ``score=`` changes the output: a "+" adapter, or a model conditioned by construction."""
        return self.is_conditioned

    def run_net(self, *args, score: Optional[ScoreLike] = None, **kwargs):
        """Call ``self.net``; a "+" adapter injects ``score`` (default: level 9).

        A base adapter ignores ``score`` so that the same call works for both.
        The level is passed per call, so threads, ``DataParallel`` replicas and
        compiled or checkpointed calls each see their own. The first positional
        argument (the image) is laid out for the fast path (:meth:`prepare_input`);
        outputs come back in the input's memory layout (as on the exact path), in
        float32 under reduced precision.
        """
        input_cl = bool(args) and is_channels_last(args[0])
        if args and isinstance(args[0], torch.Tensor):
            args = (self.prepare_input(args[0]),) + args[1:]
            device = args[0].device
        else:
            self.prepare_input(torch.empty(0))
            device = next(self.parameters()).device
        with self.autocast(device):
            if not self._iq_specs:
                out = self.net(*args, **kwargs)
            else:
                out = call_conditioned(self.net, self._iq_key, self.embeddings(), args, kwargs,
                                       self._iq_default if score is None else score)
        return self.finish_output(out, input_cl)

    def finish_output(self, out: Any, channels_last: bool = False) -> Any:
        """Outputs of a fast-path / reduced-precision call laid out as the input was (``channels_last``:
        it was channels-last) and in float32; unchanged on the exact path in float32."""
        if self._fast_state.channels_last or self.precision != "fp32":
            out = contiguous(out, torch.float32 if self.precision != "fp32" else None, channels_last)
        return out

    def trainable_parameters(self, train_base: bool = False) -> list[nn.Parameter]:
        """Parameters a fine-tune updates: the embeddings, plus ``net``'s when ``train_base``."""
        params = self.embedding_parameters()
        if train_base or not params:
            params += list(self.net.parameters())
        return params

    def prepare_finetune(self, train_base: bool = False) -> list[nn.Parameter]:
        """Make :meth:`trainable_parameters` the only ones with ``requires_grad``, and return them.

        Modes: every module whose parameters and buffers are all frozen is put in
        ``eval()`` (BatchNorm running statistics, spectral-norm vectors and
        dropout of the frozen base do not change); the rest is in ``train()``.
        An embedding-only fine-tune thus changes nothing but the embedding rows.
        """
        params = self.trainable_parameters(train_base)
        self.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        self.train()
        freeze_modes(self)
        return params

    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score: ScoreLike) -> dict[str, torch.Tensor]:
        """Training losses of this model's own objective; the sum is minimised.

        ``lq``, ``gt``: ``(B, 3, H, W)`` in [0, 1]; ``score``: the GT's level(s).
        Adapters that support ``iqprior finetune`` override this.
        """
        raise NotImplementedError(f"{self.adapter_name} does not support fine-tuning yet")

    # -- official files -------------------------------------------------------------------
    def convert_official(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map an official state dict onto ``self.net``'s keys (timm's ``checkpoint_filter_fn``)."""
        return match_prefix(state, self.net.state_dict().keys(), self.official_prefixes)

    def load_official(self, path: str | os.PathLike) -> Adapter:
        """Load the official released file into ``self.net`` (strict, ``weights_only=True``)."""
        state = read_official_checkpoint(path, self.official_wrapper_keys)
        load_strict(self.net, self.convert_official(state), source=str(path))
        return self

    # -- our own checkpoints --------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` (atomically per file)."""
        from safetensors.torch import save_file

        from iqprior.io import atomic_path, atomic_write_bytes

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"adapter": self.adapter_name, "options": _jsonable(self.options),
                  "iqprior_version": _version()}
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"adapter": self.adapter_name})
        atomic_write_bytes(directory / CONFIG_NAME, json.dumps(config, indent=2).encode())
        return directory

    def load_pretrained_weights(self, directory: str | os.PathLike) -> Adapter:
        """Load ``model.safetensors`` from a :meth:`save_pretrained` directory (strict)."""
        from safetensors.torch import load_file

        path = Path(directory) / WEIGHTS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME}")
        try:
            state = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read {path}: {e}") from None
        load_strict(self, state, source=str(path))
        return self

    def extra_repr(self) -> str:
        return f"name={self.adapter_name!r}, conditioned={self.is_conditioned}"


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a saved adapter directory."""
    path = Path(directory) / CONFIG_NAME
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory} is a directory but has no {CONFIG_NAME}: not a saved adapter") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or "adapter" not in config:
        raise CheckpointError(f"{path} does not name an adapter")
    return config


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in options.items():
        if isinstance(v, (str, int, float, bool, type(None), list, tuple, dict)):
            out[k] = list(v) if isinstance(v, tuple) else v
    return out  # generators, devices etc. are run-time options, not saved


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("iqprior")
    except Exception:
        return "unknown"

