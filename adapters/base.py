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
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from iqprior.checkpoint import CheckpointError, load_strict, match_prefix, read_official_checkpoint
from iqprior.conditioning import ConditionedModule, Injection, ScoreEmbedding
from iqprior.conditioning.context import new_key
from iqprior.conditioning.inject import attach, call_conditioned, free_embedding_name
from iqprior.conditioning.modes import freeze_modes
from iqprior.levels import ScoreLike

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_SCORE = 9  # the paper conditions on the top level at inference (App. 6.1.2)


class Adapter(nn.Module):
    """Base class: ``y = adapter(x, score=None)``, x and y RGB in [0, 1] (y not clamped).

    Subclasses set ``self.net`` and implement :meth:`forward`, calling the
    network through :meth:`run_net` so that a "+" variant's condition applies.
    Class attributes:

    - ``official_prefixes``: key prefixes an official file may carry that
      :func:`iqprior.checkpoint.match_prefix` should strip or add.
    - ``official_wrapper_keys``: where the official file keeps its state dict.
    - ``task``: ``"face"`` (restore aligns faces in whole photos) or ``"image"``
      (the whole image is processed at any size, e.g. underwater models).
    - ``native_size``: the square size the network works at, or ``None``.
    """

    task: str = "face"                 # "face" (aligned 512 crops / whole photos via face detection) or "image"
    native_size: Optional[int] = 512   # square input size the network expects; None = any size
    official_prefixes: tuple[str, ...] = ("module.",)
    official_wrapper_keys: tuple[str, ...] = ("params_ema", "params", "state_dict", "net", "model")

    def __init__(self, name: str, options: Optional[dict[str, Any]] = None):
        super().__init__()
        self.adapter_name = name
        self.options: dict[str, Any] = dict(options or {})
        object.__setattr__(self, "_iq_key", new_key())
        object.__setattr__(self, "_iq_specs", ())
        object.__setattr__(self, "_iq_default", None)

    # -- conditioning ("+" variants) ------------------------------------------------------
    def enable_condition(self, at: str, shape: Optional[tuple[int, ...]] = None, levels: int = 10,
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
        return bool(self._iq_specs)

    def run_net(self, *args, score: Optional[ScoreLike] = None, **kwargs):
        """Call ``self.net``; a "+" adapter injects ``score`` (default: level 9).

        A base adapter ignores ``score`` so that the same call works for both.
        The level is passed per call, so threads, ``DataParallel`` replicas and
        compiled or checkpointed calls each see their own.
        """
        if not self._iq_specs:
            return self.net(*args, **kwargs)
        if score is None:
            score = self._iq_default
        return call_conditioned(self.net, self._iq_key, self.embeddings(), args, kwargs, score)

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

