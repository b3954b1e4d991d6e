"""What one visitor of ``iqprior demo`` can make the server do, bounded.

- **Pixels**: an upload whose header declares more than :data:`DEMO_MAX_PIXELS`
  (4 MP, e.g. 2048x2048) is *refused* before any pixel is decoded (the
  library's header check, :func:`iqprior.io.read_image_array` with a lower
  cap); the page says so. The model therefore never runs on more than 4 MP
  (a sweep: ten times that), whatever endpoint is called.
- **No URLs**: the image inputs accept uploaded files only; a ``{"path":
  "https://..."}`` payload sent to the API is refused before Gradio fetches it
  (:func:`refuse_urls`).
- **Same origin**: a request carrying an ``Origin`` header of another site
  (a page in the visitor's browser posting to the demo) is answered 403
  before it reaches Gradio, so it can neither upload nor run anything
  (:class:`SameOriginOnly`).
- **Files**: Gradio's cache of uploads and results is emptied every
  :data:`CACHE_SECONDS` of files older than that (``delete_cache``) and at
  shutdown; the service's output folder keeps at most :data:`MAX_OUTPUTS`
  files no older than :data:`CACHE_SECONDS` (:func:`prune_outputs`) and is
  removed at shutdown when the service created it.
- **Queue**: every computing event shares one slot (one request runs at a
  time) and at most :data:`QUEUE_SIZE` wait; uploads are at most
  :data:`MAX_UPLOAD`.
- **Host**: serving on an address other than loopback needs
  ``--allow-remote`` and prints a warning (:func:`check_host`).
"""
from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

__all__ = ["DEMO_MAX_PIXELS", "CACHE_SECONDS", "MAX_OUTPUTS", "QUEUE_SIZE", "MAX_UPLOAD", "is_loopback",
           "check_host", "refuse_urls", "prune_outputs", "SameOriginOnly"]

DEMO_MAX_PIXELS = 4_000_000   # 4 MP per upload (2000x2000); the CLI's cap is 100 MP
CACHE_SECONDS = 3600          # uploads and results older than an hour are deleted
MAX_OUTPUTS = 200             # files kept in the service's output folder
QUEUE_SIZE = 8                # requests waiting for the model slot
MAX_UPLOAD = "25mb"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) serves this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_host(host: str, allow_remote: bool) -> str | None:
    """``None`` for loopback; the warning to print for another address with ``allow_remote``; else ValueError."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise ValueError(f"--host {host} serves the demo beyond this machine (no login, no TLS, anyone who reaches "
                         f"it runs models on this computer); pass --allow-remote to do that on purpose")
    return (f"serving on {host}: anyone who can reach this address can use the demo (no login, no TLS); "
            f"each upload is capped at {DEMO_MAX_PIXELS / 1e6:.0f} MP and requests run one at a time")


def _is_url(path: Any) -> bool:
    return isinstance(path, str) and path.strip().lower().startswith(("http://", "https://", "ftp://", "//", "data:"))


def refuse_urls(component: Any) -> None:
    """Make ``component`` refuse URL payloads before Gradio downloads them (uploads only)."""
    import gradio as gr

    for name in ("move_resource_to_block_cache", "async_move_resource_to_block_cache"):
        original = getattr(component, name, None)
        if original is None:
            continue

        def guard(path, *args, _original=original, **kwargs):
            if _is_url(path):
                raise gr.Error("URL inputs are not accepted: upload the image file", print_exception=False)
            return _original(path, *args, **kwargs)

        setattr(component, name, guard)


def prune_outputs(directory: Path, max_files: int = MAX_OUTPUTS, max_age: float = CACHE_SECONDS) -> int:
    """Delete files in ``directory`` older than ``max_age`` seconds, then the oldest beyond ``max_files``;
    returns how many were deleted."""
    now = time.time()
    files = []
    for p in directory.iterdir():
        try:
            if p.is_file() and not p.is_symlink():
                files.append((p.stat().st_mtime, p))
        except OSError:
            continue
    files.sort()
    doomed = [p for t, p in files if now - t > max_age]
    kept = [p for t, p in files if now - t <= max_age]
    doomed += kept[: max(0, len(kept) - max_files)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return len(doomed)


class SameOriginOnly:
    """ASGI middleware: a request whose ``Origin`` is not the server's own address gets 403."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            origin, host = headers.get("origin"), headers.get("host", "")
            if origin is not None and not _same_origin(origin, host):
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("cross-origin requests are refused", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _same_origin(origin: str, host: str) -> bool:
    from urllib.parse import urlsplit

    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.lower()
