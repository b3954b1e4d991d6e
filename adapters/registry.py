"""The registry: adapter names -> builders, and the one way every adapter is built.

:func:`create` (and every built-in ``build_*`` function, through :func:`builder`)
ends in :func:`configure`, the one place where a built model gets its spec's task,
controls, export refusal and fast path, the run-time ``exact`` / ``precision`` settings and eval mode, so
``adapters.create("codeformer")`` and ``build_codeformer()`` return identically
configured models. Public names are re-exported by :mod:`adapters`.
"""
from __future__ import annotations

import copy
import difflib
import functools
import importlib
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from iqprior.checkpoint import CheckpointError

from .base import Adapter, read_config
from .specs import SPECS, AdapterSpec

# user additions (``register``); the built-in table is :data:`adapters.specs.SPECS`
_USER: dict[str, AdapterSpec] = {}

__all__ = ["create", "configure", "builder", "list_adapters", "register", "spec", "official_weights",
           "finetune_weights", "files_used_by"]


def register(name: str, target: str, **fields: Any) -> None:
    """Add an adapter ``name -> "module:function"`` (e.g. a user's own model) for this process.

    ``fields`` are further :class:`AdapterSpec` fields (``task``, ``native_size``,
    ``official_files``...). To make an adapter visible to the ``iqprior`` command,
    declare it in the ``iqprior.adapters`` entry-point group instead.
    """
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    _USER[name] = AdapterSpec(name, target, **fields)


ENTRY_POINT_GROUP = "iqprior.adapters"


@functools.lru_cache(maxsize=1)
def _entry_points() -> dict[str, AdapterSpec]:
    """Adapters declared by installed packages in the ``iqprior.adapters`` entry-point group (read once)."""
    from importlib.metadata import entry_points

    out: dict[str, AdapterSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
        if ep.name in SPECS:
            warnings.warn(f"entry point {ep.name!r} of {dist} in {ENTRY_POINT_GROUP} is ignored: the name is a "
                          f"built-in adapter", stacklevel=3)
            continue
        out[ep.name] = AdapterSpec(ep.name, ep.value, source=f"entry point of {dist}") if ":" in ep.value \
            else _BrokenSpec(ep.name, f"entry point {ep.name} = {ep.value!r} ({dist}, group {ENTRY_POINT_GROUP}) "
                                      f"is not 'module:function'")
    return out


class _BrokenSpec(AdapterSpec):
    """A listed entry point whose value cannot be used; :func:`create` reports it in one line."""

    def __init__(self, name: str, error: str):
        super().__init__(name, "invalid:entry_point")
        object.__setattr__(self, "source", error)


def _table() -> dict[str, AdapterSpec]:
    return {**SPECS, **_entry_points(), **_USER}


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
    entry = spec(name)
    if isinstance(entry, _BrokenSpec):
        raise ImportError(entry.source)
    module, func = entry.builder.split(":", 1)
    where = f" ({entry.source})" if entry.source.startswith("entry point") else ""
    try:
        mod = importlib.import_module(module.strip())
    except ImportError as e:
        raise ImportError(f"adapter {name!r}{where}: cannot import {module!r}: {e}") from e
    try:
        return getattr(mod, func.strip())
    except AttributeError:
        raise AttributeError(f"adapter {name!r}{where}: module {module!r} has no {func!r}") from None


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


def _registered_file(checkpoint: Optional[str | os.PathLike]) -> Optional[str | os.PathLike]:
    """``--checkpoint NAME``: a registered file name that is no path on disk -> its copy in the weights cache."""
    if checkpoint is None or str(checkpoint) == "official" or Path(checkpoint).exists():
        return checkpoint
    from iqprior import weights

    if str(checkpoint) in weights.REGISTRY:
        return weights.resolve(str(checkpoint))
    return checkpoint


def _resolve_all(names: list[str]) -> dict[str, Path]:
    """Local paths of registered files; one error names every file that is missing."""
    from iqprior import weights

    paths, missing = {}, []
    for n in dict.fromkeys(names):
        try:
            paths[n] = weights.resolve(n)
        except weights.WeightsUnavailableError as e:
            missing.append(str(e))
    if missing:
        raise weights.WeightsUnavailableError(" | ".join(missing))
    return paths


def _run_options(entry: AdapterSpec, options: dict[str, Any], tiny: bool) -> tuple[dict[str, Any], bool, Any]:
    """Builder options (``None`` dropped; ``tiny``: the spec's tiny options under them) and the run-time
    ``exact`` / ``precision``."""
    if not isinstance(tiny, bool):
        raise TypeError(f"tiny must be True or False, got {tiny!r}")
    base = copy.deepcopy(dict(entry.tiny)) if tiny else {}
    options = {**base, **{k: v for k, v in options.items() if v is not None}}
    return options, options.pop("exact", False), options.pop("precision", None)


def _check_type(model: Any, entry: AdapterSpec) -> Adapter:
    if not isinstance(model, Adapter):
        raise TypeError(f"adapter {entry.name!r}: {entry.builder} returned a {type(model).__name__}, not an "
                        f"adapters.Adapter")
    return model


def configure(model: Adapter, name: str, *, exact: bool = False, precision: Optional[str] = None) -> Adapter:
    """The one place a built adapter is configured: ``name``'s spec (task, controls, export refusal, fast
    path; a field the spec leaves unset keeps the adapter's own), ``exact``, ``precision``, eval mode.
    :func:`create` and every :func:`builder` end here."""
    entry = spec(name)
    _check_type(model, entry)
    for attr in ("task", "controls", "export_refused", "fast_path"):
        value = getattr(entry, attr)
        if value is not None:
            setattr(model, attr, value)
    model.set_exact(exact)
    if precision is not None:
        model.set_precision(precision)
    return model.eval()


_F = TypeVar("_F", bound=Callable[..., Adapter])


def builder(name: str) -> Callable[[_F], _F]:
    """Decorate the builder of adapter ``name`` so that calling it returns what ``create(name, ...)`` does.

    The decorated function takes its own options plus ``exact``, ``precision`` and
    ``tiny`` (as :func:`create`), drops ``None`` options and ends in :func:`configure`.
    :func:`create` calls the undecorated function (``__wrapped__``) and configures once.
    """
    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def build(*, tiny: bool = False, **options: Any) -> Adapter:
            options, exact, precision = _run_options(spec(name), options, tiny)
            return configure(fn(**options), name, exact=exact, precision=precision)
        build.__adapter_builder__ = fn  # type: ignore[attr-defined]
        return build  # type: ignore[return-value]
    return decorate


def _load_base_directory(model: Adapter, directory: str | os.PathLike, base: str) -> None:
    """Load a saved ``base`` adapter's weights into the "+" ``model``'s network; its embeddings start at zero."""
    import torch

    from iqprior.checkpoint import load_strict

    saved = create(base, checkpoint=directory)
    load_strict(model.net, saved.net.state_dict(), source=str(directory))
    with torch.no_grad():
        for w in model.embedding_parameters():
            w.zero_()
    warnings.warn(f"{directory} holds a saved {base!r} adapter: loaded into {model.adapter_name!r} with its level "
                  f"embedding(s) at zero (it restores as {base!r} until the embedding is fine-tuned)", stacklevel=3)


def _bounded_by_folder(directory: str | os.PathLike):
    """:func:`iqprior.build_bounds.bounded_build` by the saved weights' header (``model.safetensors``)."""
    from iqprior.build_bounds import bounded_build, safetensors_counts

    from .base import WEIGHTS_NAME

    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        counts = safetensors_counts(path)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None
    return bounded_build(*counts, source=f"{directory}/config.json")


def create(name: str, checkpoint: Optional[str | os.PathLike] = None, *, tiny: bool = False,
           **options: Any) -> Adapter:
    """Build adapter ``name`` in eval mode.

    Args:
        name: one of :func:`list_adapters` (unknown names get a "did you mean").
        checkpoint: ``None`` (random init), the official released file as
            downloaded, a directory written by ``save_pretrained``, a
            registered file name (``"DAEFR_model.ckpt"``, found through
            ``IQPRIOR_WEIGHTS`` and the cache when no such path exists), or
            ``"official"`` to fetch the official file(s) through
            :mod:`iqprior.weights` (cache, ``IQPRIOR_WEIGHTS``).
        tiny: lay the spec's small random-weight options (:attr:`AdapterSpec.tiny`,
            what tests, examples and benchmarks build) under ``options``.
        **options: the adapter's options; ``None`` values are dropped so that
            command-line defaults never override a model's own. Every adapter
            also takes ``exact`` (``True``: the upstream-identical path instead
            of the fast one, see :mod:`iqprior.fastpath`) and ``precision``
            (``"fp32"`` default, ``"bf16"``, ``"fp16"``: autocast); both are
            run-time settings, not saved with the model.
    """
    entry = spec(name)
    options, exact, precision = _run_options(entry, options, tiny)
    raw = _resolve(name)
    raw = getattr(raw, "__adapter_builder__", raw)  # the undecorated builder: configure() runs once, below
    checkpoint = _registered_file(checkpoint)

    def build(**kwargs: Any) -> Adapter:
        return _check_type(raw(**kwargs), entry)

    if checkpoint is not None and Path(checkpoint).is_dir():
        config = read_config(checkpoint)
        if config["adapter"] != name and not (entry.is_plus and config["adapter"] == entry.base):
            raise CheckpointError(f"{checkpoint} holds a saved {config['adapter']!r} adapter, not {name!r}")
        with _bounded_by_folder(checkpoint):  # config.json's options size the network before a weight is read
            model = build(**{**config.get("options", {}), **options})
        if config["adapter"] == name:
            model.load_pretrained_weights(checkpoint)
        else:  # a "+" adapter takes its base's saved directory as it takes its base's official file
            _load_base_directory(model, checkpoint, entry.base)
    elif checkpoint is not None and str(checkpoint) == "official":
        files = entry.official_files
        if not files:
            raise ValueError(f"adapter {name!r} has no official weights registered")
        paths = _resolve_all([files[0], *entry.official_options.values()])
        for opt, fname in entry.official_options.items():  # e.g. difface: {"estimator_checkpoint": file}
            options.setdefault(opt, str(paths[fname]))
        model = build(**options)
        model.load_official(paths[files[0]])
    else:
        model = build(**options)
        if checkpoint is not None:
            model.load_official(checkpoint)
        elif getattr(model, "net", None) is None:  # auto/auto+: the architecture comes from the file
            raise ValueError(f"adapter {name!r} builds its network from a model file: pass checkpoint=FILE "
                             f"(--checkpoint FILE)")
    return configure(model, name, exact=exact, precision=precision)
