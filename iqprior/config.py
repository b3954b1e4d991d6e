"""Frozen configuration dataclasses that round-trip through JSON (``config.json``), and the one unknown-option check."""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Iterable, Mapping, Optional, TypeVar

C = TypeVar("C", bound="ConfigMixin")

__all__ = ["ConfigMixin", "UnknownOptionError", "check_options"]


class UnknownOptionError(ValueError, TypeError):
    """An option name nobody knows.

    Both a ``ValueError`` (a wrong key in a config mapping or YAML section) and a
    ``TypeError`` (a wrong keyword argument, as Python itself reports one), so
    either ``except`` catches it.
    """


def check_options(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """Raise :class:`UnknownOptionError` naming every name of ``given`` not in ``known``.

    ``what`` names the options in the message, e.g. ``"DAEFR option(s)"`` gives
    ``unknown DAEFR option(s) ['chh']; did you mean 'ch'? (known: ch, ch_mult, ...)``.
    """
    known = sorted(set(known))
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    close = [c for u in unknown for c in difflib.get_close_matches(u, known, n=1, cutoff=0.6)]
    hint = f"; did you mean {', '.join(map(repr, dict.fromkeys(close)))}?" if close else ""
    raise UnknownOptionError(f"unknown {what} {unknown}{hint} (known: {', '.join(known) or 'none'})")


def _plain(value: Any) -> Any:
    """Tuples as lists, at any depth (JSON and YAML hold lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


class ConfigMixin:
    """``to_dict`` (tuples as lists, for JSON) and ``from_dict`` (unknown keys rejected by name).

    Mix into a ``@dataclass(frozen=True)``; ``config_name`` names it in error
    messages. A field whose ``default_factory`` is itself a ``ConfigMixin``
    class is read from a nested mapping.
    """

    config_name = "config"

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls: type[C], options: Optional[Mapping[str, Any]] = None) -> C:
        """The defaults with ``options`` laid over them; unknown keys are an :class:`UnknownOptionError`."""
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"{cls.config_name} options must be a mapping, got {type(options).__name__}")
        options = dict(options or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        check_options(options, fields, f"{cls.config_name} option(s)")
        for name, f in fields.items():
            sub = f.default_factory
            if isinstance(sub, type) and issubclass(sub, ConfigMixin) and isinstance(options.get(name), Mapping):
                options[name] = sub.from_dict(options[name])
        return cls(**options)


# -- YAML with bounds: a config file is small and shallow ------------------------------------
MAX_YAML_BYTES = 1 << 20   # 1 MiB: a training config is a few hundred bytes
MAX_YAML_DEPTH = 32        # nesting of mappings / lists (configs use 2)
MAX_YAML_NODES = 100_000   # nodes composed, aliases included


def safe_load_bounded(text: str, source: str = "config") -> Any:
    """``yaml.safe_load`` of ``text`` with size, depth and node bounds; ``ValueError`` (one line) beyond them.

    PyYAML's pure-Python scanner is quadratic in the flow nesting depth and
    recursive in the composer, so a few kB of ``[[[[...`` would hang or raise
    ``RecursionError``; aliases are counted as nodes, so a "billion laughs"
    document is refused too.
    """
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise ValueError(f"{source} is {len(text)} characters, above the {MAX_YAML_BYTES} limit for a YAML config")

    class Loader(yaml.SafeLoader):
        nodes = 0
        depth = 0

        def fetch_more_tokens(self):
            if self.flow_level > MAX_YAML_DEPTH or len(self.indents) > MAX_YAML_DEPTH:
                raise ValueError(f"{source} nests deeper than {MAX_YAML_DEPTH} levels")
            return super().fetch_more_tokens()

        def compose_node(self, parent, index):
            Loader.nodes += 1
            Loader.depth += 1
            try:
                if Loader.nodes > MAX_YAML_NODES or Loader.depth > MAX_YAML_DEPTH:
                    raise ValueError(f"{source} has more than {MAX_YAML_NODES} nodes or {MAX_YAML_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                Loader.depth -= 1

        def construct_document(self, node):
            _count_expanded(node, MAX_YAML_NODES, source)
            return super().construct_document(node)

    loader = Loader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ValueError(f"{source} nests too deeply for a YAML config") from None
    finally:
        loader.dispose()


def _count_expanded(root: Any, limit: int, source: str) -> None:
    """Refuse a node graph whose expansion (aliases followed) exceeds ``limit`` nodes."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        value = node.value
        if isinstance(value, list):
            items = [v for pair in value for v in (pair if isinstance(pair, tuple) else (pair,))]
            total = 1 + sum(size(v) for v in items)
        else:
            total = 1
        sizes[id(node)] = min(total, limit + 1)
        if total > limit:
            raise ValueError(f"{source} expands to more than {limit} values (aliases of aliases?)")
        return total

    size(root)
