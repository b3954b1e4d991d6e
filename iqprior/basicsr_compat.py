"""Make basicsr 1.4.2 importable with current torchvision.

basicsr 1.4.2 (the newest release) imports
``torchvision.transforms.functional_tensor.rgb_to_grayscale`` at module level
(in ``basicsr/data/degradations.py``, reached from every ``import basicsr.*``
through its package ``__init__``). torchvision 0.17 removed that private module,
so any basicsr import fails. The function it needs still exists, publicly, in
``torchvision.transforms.functional``; this module registers a stand-in
``functional_tensor`` module that provides it. Nothing else is patched.

Call :func:`import_basicsr` (or import this module) before any basicsr module:

>>> from iqprior.basicsr_compat import import_basicsr
>>> degradations = import_basicsr("basicsr.data.degradations")  # doctest: +SKIP

Install note: basicsr ships only an sdist whose build pulls a second torch into
an isolated build environment; install it after torch with
``pip install --no-build-isolation basicsr`` (the Makefile does).
"""
from __future__ import annotations

import importlib
import sys
import types

_SHIM = "torchvision.transforms.functional_tensor"


def install_shim() -> None:
    """Register the ``functional_tensor`` stand-in if torchvision lacks the module."""
    if _SHIM in sys.modules:
        return
    try:
        importlib.import_module(_SHIM)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional as F

    shim = types.ModuleType(_SHIM)
    shim.rgb_to_grayscale = F.rgb_to_grayscale
    shim.__doc__ = "iqprior stand-in for the module torchvision 0.17 removed (see iqprior.basicsr_compat)."
    sys.modules[_SHIM] = shim


def import_basicsr(module: str = "basicsr"):
    """Import a basicsr module after installing the shim; a clear error if basicsr is missing."""
    install_shim()
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if "basicsr" in str(e) and "No module named 'basicsr" in str(e):
            raise ImportError("basicsr is not installed: pip install --no-build-isolation basicsr "
                              "(after torch)") from e
        raise


install_shim()
