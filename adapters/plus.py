"""The one "+" builder: an adapter with a zero-initialised level embedding at its spec's injection point.

Every ``build_<model>_plus`` with a fixed injection point is :func:`plus_builder`'s
function: it builds the base adapter's class under the "+" name (same options,
so a saved "+" folder's ``config.json`` builds it as before) and calls
:meth:`Adapter.enable_condition` at :attr:`AdapterSpec.condition_at`, with the
shape :meth:`Adapter.condition_shape` gives for the built configuration. ``auto+``
is not one of them: its injection point comes from the model file
(:mod:`adapters.auto`).
"""
from __future__ import annotations

from typing import Any, Callable

from .base import Adapter
from .registry import builder, spec
from .specs import MODULE

__all__ = ["plus_builder"]


def plus_builder(name: str, make: Callable[..., Adapter], *, mode: bool = False,
                 doc: str = "") -> Callable[..., Adapter]:
    """The builder of "+" adapter ``name`` (decorated with :func:`adapters.builder`).

    ``make(name, **options)`` builds the base adapter under ``name``; ``mode=True``
    adds the ``mode`` option (``"add"``, the default, or ``"adain"``, saved in the
    options when not ``"add"``), as CodeFormer+ has. ``doc``: the builder's docstring.
    """
    def build_plus(**options: Any) -> Adapter:
        entry = spec(name)  # read when called: importing a model module reads no table
        if entry.condition != MODULE:
            raise ValueError(f"adapter {name!r}: its spec names no injection point (condition_at, a module path "
                             f"of net) for the '+' builder")
        how = options.pop("mode", "add") if mode else "add"
        model = make(name, **options)
        if how != "add":
            model.options["mode"] = how
        model.enable_condition(at=entry.condition_at, shape=model.condition_shape(), mode=how)
        return model

    build_plus.__name__ = build_plus.__qualname__ = "build_" + name.replace("+", "_plus")
    build_plus.__module__ = getattr(make, "__module__", __name__)
    build_plus.__doc__ = doc or f"{name}: the base adapter with a zero-initialised level embedding (adapters.plus)."
    return builder(name)(build_plus)
