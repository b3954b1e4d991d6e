"""Frozen configuration dataclasses that round-trip through JSON (``config.json``)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, TypeVar

C = TypeVar("C", bound="ConfigMixin")


class ConfigMixin:
    """``to_dict`` (tuples as lists, for JSON) and ``from_dict`` (unknown keys rejected by name).

    Mix into a ``@dataclass(frozen=True)``; ``config_name`` names it in error messages.
    """

    config_name = "config"

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls: type[C], options: Optional[Mapping[str, Any]] = None) -> C:
        """The defaults with ``options`` laid over them; unknown keys are a ``ValueError`` naming them."""
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown {cls.config_name} option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)
