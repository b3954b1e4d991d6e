"""Reading a released model file for ``auto`` / ``auto+``: iqprior's safe reader, then spandrel.

The file is read by :func:`iqprior.checkpoint.safe_load` (``weights_only=True``
with the project's allowlist; hostile files are refused with one line) or, for
``.safetensors``, by safetensors. The state dict is unwrapped by
:func:`iqprior.checkpoint.unwrap_state_dict` from the layouts trainers release
(the one list of wrapper keys, :data:`iqprior.checkpoint_format.WRAPPER_KEYS`:
BasicSR ``params_ema`` / ``params``, Lightning ``state_dict``, ``net``, ``model``,
``model_state_dict``...; up to three levels deep, or a single unnamed key) and
only then handed to spandrel's ``ModelLoader().load_from_state_dict``;
spandrel's own file loader is never used. Key prefixes
(:data:`iqprior.checkpoint_format.PREFIXES`: ``module.``, ``netG.``, ``net_g.``,
``model.``, ``generator.``, and the wrappers flattened into a safetensors file:
``params_ema.``, ``params.``) are stripped when every key carries one and the
keys as they are match no architecture (:func:`iqprior.checkpoint.prefix_variants`).

Architectures of ``spandrel_extra_arches`` (non-commercial licences) are
detected too when that package is installed; iqprior does not depend on it.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from iqprior.build_bounds import bounded_build, state_counts
from iqprior.checkpoint import CheckpointError, prefix_variants, safe_load, unwrap_state_dict
from iqprior.checkpoint_format import PREFIXES, WRAPPER_KEYS, is_safetensors


@functools.lru_cache(maxsize=1)
def registry():
    """spandrel's main registry, with ``spandrel_extra_arches`` installed into it when that package is present."""
    from spandrel import MAIN_REGISTRY

    try:
        import spandrel_extra_arches
    except ImportError:
        return MAIN_REGISTRY
    try:
        spandrel_extra_arches.install()
    except Exception:  # already installed (DuplicateArchitectureError) or an incompatible version: keep the main ones
        pass
    return MAIN_REGISTRY


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The tensor state dict inside ``obj``: any of the wrapper keys, up to three levels deep, or one single key."""
    return unwrap_state_dict(obj, WRAPPER_KEYS, source, levels=3, single_key=True)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read ``path`` safely and unwrap its state dict (one-line ``CheckpointError`` / ``FileNotFoundError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.stat().st_size and (path.suffix == ".safetensors" or is_safetensors(path)):
        from safetensors.torch import load_file
        try:
            return _unwrap(load_file(str(path)), str(path))
        except CheckpointError:
            raise
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read {path} as safetensors: {str(e).splitlines()[0] if str(e) else e!r}"
                                  ) from None
    return _unwrap(safe_load(path), str(path))


def _looks(state: Mapping[str, torch.Tensor], n: int = 4) -> str:
    keys = list(state)
    shown = ", ".join(f"{k} {tuple(state[k].shape)}" for k in keys[:n])
    return f"{len(keys)} tensors: {shown}" + (" ..." if len(keys) > n else "")


def detected_id(state: Mapping[str, torch.Tensor]) -> str | None:
    """The id of the first spandrel architecture whose detection accepts ``state``."""
    for support in registry().architectures("detection"):
        if support.architecture.detect(state):
            return str(support.architecture.id)
    return None


def load_descriptor(state: dict[str, torch.Tensor], source: str):
    """spandrel's ``ImageModelDescriptor`` for ``state`` (one-line ``CheckpointError``/``ValueError`` otherwise)."""
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    from .families import UNSUPPORTED

    loader = ModelLoader(device="cpu", registry=registry())
    failure = None
    elements, tensors = state_counts(state)
    for variant in prefix_variants(state, PREFIXES, every_key=True, add=False):
        try:
            with bounded_build(elements, tensors, source):  # key indices and shapes size the network
                desc = loader.load_from_state_dict(dict(variant))
        except UnsupportedModelError:
            continue
        except CheckpointError:
            raise
        except Exception as e:  # detected, but the weights do not build that architecture
            failure = failure or f"{detected_id(variant)}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        arch_id = str(desc.architecture.id)
        if arch_id in UNSUPPORTED or not isinstance(desc, ImageModelDescriptor):
            reason = UNSUPPORTED.get(arch_id, f"purpose {desc.purpose!r} is not image-to-image")
            raise ValueError(f"{source} is a {arch_id} model, which auto cannot run: {reason}")
        return desc
    if failure is not None:
        raise CheckpointError(f"{source}: spandrel detected {failure} (a truncated or modified file?)")
    raise CheckpointError(f"{source}: no architecture spandrel knows matches this file ({_looks(state)}); "
                          f"see docs/auto.md for the supported families")


def load_by_id(arch_id: str, state: dict[str, torch.Tensor], source: str):
    """Build architecture ``arch_id`` from ``state`` (a saved ``auto`` directory: no detection order involved)."""
    support = registry().get(arch_id)
    if support is None:
        raise CheckpointError(f"{source} holds a {arch_id} model, which the installed spandrel does not know (a "
                              f"family of spandrel_extra_arches? install that package, or a newer spandrel)")
    try:
        with bounded_build(*state_counts(state), source):
            return support.architecture.load(dict(state))
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{source}: its {arch_id} weights do not build the network: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from None

