"""The sha256 of a file, and the hash prefix that torch hub and pyiqa put in a file's name.

Both the checkpoint reader (:func:`iqprior.checkpoint.check_integrity`, on every read) and the
weights registry (:func:`iqprior.weights.verify`, downloads) check files with these. No torch,
no other iqprior module: the modules that read and fetch files sit above this one.
"""
from __future__ import annotations

import hashlib
import os
import re

#: torch hub's (and pyiqa's) name of a published file: ``name-<first 8..64 hex of its sha256>.ext``
HUB_HASH = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")

_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (cached per path, size and mtime within the process)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
