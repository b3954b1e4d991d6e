"""Reduced precision that never silently fails: a non-finite fp16/bf16 output is redone in fp32.

:class:`PrecisionGuard` wraps a model (an adapter with ``precision`` and ``set_precision``); every call
whose output has a NaN or Inf under ``"fp16"``/``"bf16"`` is run again in fp32, and the rest of that input
(its other tiles, faces or frames until :meth:`PrecisionGuard.begin` is called for the next input) stays
in fp32. The first fallback of a run warns once; :attr:`PrecisionGuard.fallbacks` counts the inputs
that fell back, for the run's summary. Every other attribute is the wrapped model's.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch

__all__ = ["PrecisionGuard"]


class PrecisionGuard:
    """``guard(x, **kw)`` = ``model(x, **kw)``, redone in fp32 where reduced precision gave NaN/Inf."""

    def __init__(self, model: Any):
        self.model = model
        self.precision = getattr(model, "precision", "fp32")
        self.fallbacks = 0          # inputs that fell back to fp32
        self._fell_back = False     # the current input did

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)

    def begin(self) -> None:
        """A new input starts: it runs in the requested precision again."""
        if self._fell_back:
            self.model.set_precision(self.precision)
        self._fell_back = False

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.model(x, *args, **kwargs)
        if self.precision == "fp32" or self._fell_back or bool(torch.isfinite(y).all()):
            return y
        self.fallbacks += 1
        self._fell_back = True
        if self.fallbacks == 1:
            warnings.warn(f"{getattr(self.model, 'adapter_name', 'the model')} gave NaN/Inf in {self.precision}: "
                          f"this input (and any later one that does) is redone in fp32; the run's summary counts "
                          f"them", RuntimeWarning, stacklevel=2)
        self.model.set_precision("fp32")
        return self.model(x, *args, **kwargs)
