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

from .base import Adapter, read_config
from .checkpoint import CheckpointError

# name -> "module:function"; the function builds the adapter (random init) from options.
_REGISTRY: dict[str, str] = {
    "codeformer": "adapters.codeformer:build_codeformer",
    "codeformer+": "adapters.codeformer:build_codeformer_plus",
    "daefr": "adapters.daefr:build_daefr",
    "daefr+": "adapters.daefr:build_daefr_plus",
    "difface": "adapters.difface:build_difface",
    "difface+": "adapters.difface:build_difface_plus",
    "puienet": "adapters.puienet:build_puienet",
    "puienet+": "adapters.puienet:build_puienet_plus",
    "nu2net": "adapters.nu2net:build_nu2net",
    "nu2net+": "adapters.nu2net:build_nu2net_plus",
    "iqpfr": "iqprior.models.iqpfr.adapter:build_iqpfr",
}

__all__ = ["create", "list_adapters", "register", "Adapter", "CheckpointError", "official_weights",
           "finetune_weights"]


def register(name: str, target: str) -> None:
    """Add an adapter entry ``name -> "module:function"`` (e.g. for a user's own model)."""
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    _REGISTRY[name] = target


def list_adapters(available_only: bool = False) -> list[str]:
    """Registered adapter names; with ``available_only``, those whose module imports."""
    names = list(_REGISTRY)
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
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown adapter {name!r}{hint} (available: {', '.join(_REGISTRY)})")
    module, func = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)


def official_weights(name: str) -> tuple[str, ...]:
    """Names (in :mod:`iqprior.weights`) of the official files adapter ``name`` loads."""
    builder = _resolve(name)
    return tuple(getattr(builder, "official_files", ()))


def finetune_weights(name: str) -> dict[str, str]:
    """``{option: official file}`` that a fine-tune of ``name`` should load when the file is on disk.

    E.g. CodeFormer+ takes its stage-II code targets from the released VQGAN
    (``vqgan_checkpoint`` = ``vqgan_code1024.pth``), as upstream training does.
    """
    return dict(getattr(_resolve(name), "finetune_options", {}))


def create(name: str, checkpoint: Optional[str | os.PathLike] = None, **options: Any) -> Adapter:
    """Build adapter ``name`` in eval mode.

    Args:
        name: one of :func:`list_adapters` (unknown names get a "did you mean").
        checkpoint: ``None`` (random init), the official released file as
            downloaded, a directory written by ``save_pretrained``, or
            ``"official"`` to fetch the official file(s) through
            :mod:`iqprior.weights` (cache, ``IQPRIOR_WEIGHTS``).
        **options: the adapter's options; ``None`` values are dropped so that
            command-line defaults never override a model's own. Every adapter
            also takes ``exact`` (``True``: the upstream-identical path instead
            of the fast one, see :mod:`iqprior.fastpath`) and ``precision``
            (``"fp32"`` default, ``"bf16"``, ``"fp16"``: autocast); both are
            run-time settings, not saved with the model.
    """
    options = {k: v for k, v in options.items() if v is not None}
    exact = options.pop("exact", False)
    precision = options.pop("precision", None)
    builder = _resolve(name)
    if checkpoint is not None and Path(checkpoint).is_dir():
        config = read_config(checkpoint)
        if config["adapter"] != name:
            raise CheckpointError(f"{checkpoint} holds a saved {config['adapter']!r} adapter, not {name!r}")
        model = builder(**{**config.get("options", {}), **options})
        model.load_pretrained_weights(checkpoint)
    elif checkpoint is not None and str(checkpoint) == "official":
        from iqprior import weights
        files = getattr(builder, "official_files", ())
        if not files:
            raise ValueError(f"adapter {name!r} has no official weights registered")
        extra = getattr(builder, "official_options", {})  # e.g. difface: {"estimator_checkpoint": file}
        for opt, fname in extra.items():
            options.setdefault(opt, str(weights.resolve(fname)))
        model = builder(**options)
        model.load_official(weights.resolve(files[0]))
    else:
        model = builder(**options)
        if checkpoint is not None:
            model.load_official(checkpoint)
    model.set_exact(exact)
    if precision is not None:
        model.set_precision(precision)
    return model.eval()
