"""The one check of a torch zip archive's members before any of them is read.

``torch.save`` and ``torch.jit.save`` write every member *stored* (no
compression), so a member's size on disk is its size in memory. A compressed
member breaks that: a 0.39 MB deflate record inflates to 400 MB, and the
declared size is the attacker's to choose. Both readers of zip archives
(:func:`iqprior.checkpoint.safe_load` and :mod:`iqprior.torchscript`) call
:func:`check_member` on what they read, so memory stays bounded by the file's
size.
"""
from __future__ import annotations

import zipfile
from typing import Any

__all__ = ["MAX_MEMBER_BYTES", "check_member", "member_problem", "archive_problem", "stream_problem"]

MAX_MEMBER_BYTES = 8 << 30   # one record or data.pkl: larger is not a weight file


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why member ``info`` is not a plausible torch record (compressed, inconsistent sizes), or ``None``."""
    if info.compress_type != zipfile.ZIP_STORED:
        return (f"member {info.filename} is compressed (zip method {info.compress_type}); torch archives store "
                f"their records uncompressed")
    if info.file_size != info.compress_size or info.file_size > MAX_MEMBER_BYTES:
        return f"member {info.filename} declares {info.file_size} bytes ({info.compress_size} stored), not a plausible record"
    return None


def check_member(info: zipfile.ZipInfo, error: type[Exception]) -> None:
    """Raise ``error`` with :func:`member_problem`'s reason when there is one."""
    problem = member_problem(info)
    if problem is not None:
        raise error(problem)


def archive_problem(path: Any, file_size: int) -> str | None:
    """The first implausible member of the zip archive at ``path`` (or the stored total exceeding the
    file); ``None`` for a plausible archive or a file that is not a zip archive."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError, EOFError):
        return None  # not a zip archive: torch's legacy reader or its own error decides
    total = 0
    for info in infos:
        problem = member_problem(info)
        if problem is not None:
            return problem
        total += info.file_size
    if total > file_size:
        return f"its members declare {total} bytes, more than the file's {file_size}"
    return None


def stream_problem(f: Any) -> str | None:
    """:func:`archive_problem` for a seekable file object (its position is kept); ``None`` if not seekable."""
    try:
        if not f.seekable():
            return None
        pos = f.tell()
        size = f.seek(0, 2)
    except (AttributeError, OSError, ValueError):
        return None
    try:
        f.seek(pos)
        return archive_problem(f, size - pos)
    finally:
        f.seek(pos)
