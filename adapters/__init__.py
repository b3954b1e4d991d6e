"""Upstream restoration models behind one interface, and their "+" variants.

>>> import adapters
>>> model = adapters.create("codeformer+", checkpoint="codeformer.pth")   # doctest: +SKIP
>>> y = model(x, score=9)   # x, y: (B, 3, H, W) RGB in [0, 1]; y not clamped

Entries are ``"module:function"`` strings resolved on first use, so importing
this package imports no model code.
"""
from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import Any, Callable, Optional

from iqprior.checkpoint import CheckpointError

from .base import Adapter, read_config
from .specs import SPECS, AdapterSpec

# user additions (``register``); the built-in table is :data:`adapters.specs.SPECS`
_USER: dict[str, AdapterSpec] = {}

__all__ = ["create", "list_adapters", "register", "spec", "Adapter", "AdapterSpec", "CheckpointError",
           "official_weights", "finetune_weights"]


def register(name: str, target: str, **fields: Any) -> None:
    """Add an adapter ``name -> "module:function"`` (e.g. a user's own model) for this process.

    ``fields`` are further :class:`AdapterSpec` fields (``task``, ``native_size``,
    ``official_files``...). To make an adapter visible to the ``iqprior`` command,
    declare it in the ``iqprior.adapters`` entry-point group instead.
    """
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    _USER[name] = AdapterSpec(name, target, **fields)


def _table() -> dict[str, AdapterSpec]:
    return {**SPECS, **_USER}


def spec(name: str) -> AdapterSpec:
    """The :class:`AdapterSpec` of adapter ``name`` (unknown names get a "did you mean")."""
    table = _table()
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown adapter {name!r}{hint} (available: {', '.join(table)})")
    return table[name]


def list_adapters(available_only: bool = False) -> list[str]:
    """Registered adapter names; with ``available_only``, those whose module imports."""
    names = list(_table())
    if available_only:
        names = [n for n in names if _importable(n)]
    return names


def _importable(name: str) -> bool:
    try:
        _resolve(name)
        return True
    except (ImportError, AttributeError):
        return False


def _resolve(name: str) -> Callable[..., Adapter]:
    module, func = spec(name).builder.split(":")
    return getattr(importlib.import_module(module), func)


def official_weights(name: str) -> tuple[str, ...]:
    """Names (in :mod:`iqprior.weights`) of the official files adapter ``name`` loads."""
    return tuple(spec(name).official_files)


def finetune_weights(name: str) -> dict[str, str]:
    """``{option: official file}`` that a fine-tune of ``name`` should load when the file is on disk.

    E.g. CodeFormer+ takes its stage-II code targets from the released VQGAN
    (``vqgan_checkpoint`` = ``vqgan_code1024.pth``), as upstream training does.
    """
    return dict(spec(name).finetune_options)


def files_used_by() -> dict[str, list[str]]:
    """``{released file: [adapter names]}`` over the whole table (what ``iqprior weights list`` shows)."""
    out: dict[str, list[str]] = {}
    for s in _table().values():
        for f in s.files:
            out.setdefault(f, []).append(s.name)
    return out


def create(name: str, checkpoint: Optional[str | os.PathLike] = None, **options: Any) -> Adapter:
    """Build adapter ``name`` in eval mode.

    Args:
        name: one of :func:`list_adapters` (unknown names get a "did you mean").
        checkpoint: ``None`` (random init), the official released file as
            downloaded, a directory written by ``save_pretrained``, or
            ``"official"`` to fetch the official file(s) through
            :mod:`iqprior.weights` (cache, ``IQPRIOR_WEIGHTS``).
        **options: the adapter's options; ``None`` values are dropped so that
            command-line defaults never override a model's own.
    """
    options = {k: v for k, v in options.items() if v is not None}
    entry = spec(name)
    builder = _resolve(name)
    if checkpoint is not None and Path(checkpoint).is_dir():
        config = read_config(checkpoint)
        if config["adapter"] != name:
            raise CheckpointError(f"{checkpoint} holds a saved {config['adapter']!r} adapter, not {name!r}")
        model = builder(**{**config.get("options", {}), **options})
        model.load_pretrained_weights(checkpoint)
    elif checkpoint is not None and str(checkpoint) == "official":
        from iqprior import weights
        files = entry.official_files
        if not files:
            raise ValueError(f"adapter {name!r} has no official weights registered")
        for opt, fname in entry.official_options.items():  # e.g. difface: {"estimator_checkpoint": file}
            options.setdefault(opt, str(weights.resolve(fname)))
        model = builder(**options)
        model.load_official(weights.resolve(files[0]))
    else:
        model = builder(**options)
        if checkpoint is not None:
            model.load_official(checkpoint)
    if entry.task is not None:
        model.task = entry.task
    return model.eval()
