"""The scores manifest: one JSON object per image, one line each (JSONL).

A record is ``{"path": "sub/img.png", "raw": {member: float}, "score": float,
"level": int, "normalised_by": "calibration"|"range"}`` for a scored image, or
``{"path": ..., "error": "why"}`` for one that could not be scored. ``path`` is
relative to the scored directory (POSIX separators), so a manifest stays valid
when the data set moves.

Writing appends one line and flushes + fsyncs it, so a crash loses at most the
line being written; :func:`read_manifest` ignores a torn last line. Rewrites
(adding calibrated scores) replace the file atomically.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Iterable, Optional

from ..io import atomic_write_text


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """All records of a manifest; a missing file is empty; a torn or invalid line is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    records, bad = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(rec, dict) and "path" in rec:
                records.append(rec)
            else:
                bad += 1
    if bad:
        warnings.warn(f"{path}: skipped {bad} unreadable line(s) (an interrupted write?)", stacklevel=2)
    return records


def latest_by_path(records: Iterable[dict]) -> dict[str, dict]:
    """``{path: record}``, later records winning (a re-scored image replaces its error)."""
    return {r["path"]: r for r in records}


class ManifestWriter:
    """Appends records durably (flush + fsync per record)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close()/__exit__)

    def _repair_tail(self) -> None:
        """A crash mid-line leaves no trailing newline: end that line so the next record starts clean."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_manifest(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Replace the manifest atomically with ``records``."""
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records)
    return atomic_write_text(path, text)


def scores_by_path(path: str | os.PathLike, require_score: bool = True) -> dict[str, dict]:
    """``{relative path: record}`` of the scored (error-free) images of a manifest."""
    out = {}
    for rec in latest_by_path(read_manifest(path)).values():
        if rec.get("error"):
            continue
        if require_score and rec.get("score") is None:
            continue
        out[rec["path"]] = rec
    return out


def raw_by_member(records: Iterable[dict], members: Optional[Iterable[str]] = None) -> dict[str, list[float]]:
    """``{member: [raw scores]}`` over error-free records (for :meth:`Calibration.fit`)."""
    out: dict[str, list[float]] = {}
    for rec in records:
        if rec.get("error") or not rec.get("raw"):
            continue
        for name, value in rec["raw"].items():
            if members is None or name in members:
                out.setdefault(name, []).append(value)
    return out
