"""Members whose backend runs Python code from the Hugging Face hub: refused unless opted in, then pinned.

pyiqa builds Q-Align (``qalign``) with ``from_pretrained("q-future/one-align",
trust_remote_code=True)``: with older pyiqa the model class itself is the
repo's ``modeling_*.py``, so whatever that repo (or a tampered hub cache)
holds would run. iqprior never builds such a member unless the user opts in
explicitly, naming the commit of the repo they reviewed:

- ``iqprior score --trust-remote-code COMMIT`` (sets the variable below), or
- ``IQPRIOR_TRUST_REMOTE_CODE=COMMIT`` (a 40-hex commit id; a branch or tag
  name such as ``main`` is refused: it can move).

Then every ``from_pretrained`` call the member's pyiqa module makes gets
``revision=COMMIT``. Without the opt-in the member is not available (the
``paper`` preset leaves it out even when its cache folder exists) and
building it directly is one :class:`RemoteCodeRefused` line.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import re
from typing import Any, Iterator, Optional

from .specs import MetricSpec

__all__ = ["ENV_TRUST_REMOTE_CODE", "RemoteCodeRefused", "remote_code_revision", "check_remote_code",
           "pinned_revision", "trusting_remote_code"]

ENV_TRUST_REMOTE_CODE = "IQPRIOR_TRUST_REMOTE_CODE"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class RemoteCodeRefused(ValueError):
    """A member would run code from the hub and the user has not opted in with a pinned commit."""


def remote_code_revision() -> Optional[str]:
    """The commit the user pinned (``IQPRIOR_TRUST_REMOTE_CODE``), ``None`` when not opted in."""
    value = os.environ.get(ENV_TRUST_REMOTE_CODE, "").strip()
    if not value:
        return None
    if not _COMMIT.match(value.lower()):
        raise RemoteCodeRefused(f"{ENV_TRUST_REMOTE_CODE}={value!r:.60} is not a 40-hex commit id; pin the exact "
                                f"commit of the hub repo you reviewed (a branch or tag can move)")
    return value.lower()


@contextlib.contextmanager
def trusting_remote_code(revision: str) -> Iterator[str]:
    """Opt in for the duration of the block (``--trust-remote-code``); the commit is checked first."""
    old = os.environ.get(ENV_TRUST_REMOTE_CODE)
    os.environ[ENV_TRUST_REMOTE_CODE] = revision
    try:
        yield remote_code_revision()
    finally:
        if old is None:
            os.environ.pop(ENV_TRUST_REMOTE_CODE, None)
        else:
            os.environ[ENV_TRUST_REMOTE_CODE] = old


def refusal(spec: MetricSpec) -> str:
    return (f"IQA member {spec.name!r} runs Python code from the Hugging Face repo {spec.remote_code} "
            f"(trust_remote_code); iqprior does not run it unless you opt in with --trust-remote-code COMMIT "
            f"(or {ENV_TRUST_REMOTE_CODE}=COMMIT), the 40-hex commit of that repo you reviewed")


def check_remote_code(spec: MetricSpec) -> Optional[str]:
    """``None`` for members that run no hub code; the pinned commit when opted in; else RemoteCodeRefused."""
    if not spec.remote_code:
        return None
    revision = remote_code_revision()
    if revision is None:
        raise RemoteCodeRefused(refusal(spec))
    return revision


@contextlib.contextmanager
def pinned_revision(spec: MetricSpec, revision: Optional[str]) -> Iterator[None]:
    """While building ``spec``, every ``from_pretrained`` of its pyiqa module loads ``revision``."""
    if not spec.remote_code or revision is None:
        yield
        return
    module = importlib.import_module(f"pyiqa.archs.{spec.pyiqa_name}_arch")
    classes = [v for v in vars(module).values() if isinstance(v, type) and callable(getattr(v, "from_pretrained", None))]
    bound = {cls: cls.from_pretrained for cls in classes}  # bound before any is patched (subclasses share them)
    saved: list[tuple[type, Any]] = []
    for cls in classes:
        def pinned(*args: Any, _bound: Any = bound[cls], **kwargs: Any) -> Any:
            kwargs["revision"] = revision
            return _bound(*args, **kwargs)

        saved.append((cls, cls.__dict__.get("from_pretrained")))
        cls.from_pretrained = pinned
    try:
        yield
    finally:
        for cls, original in saved:
            if original is None:
                del cls.from_pretrained
            else:
                cls.from_pretrained = original
