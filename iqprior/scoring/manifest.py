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
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Optional

from ..io import atomic_write_text


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def valid_record(rec: object) -> bool:
    """True when ``rec`` has the shape of a manifest record (see the module docstring).

    ``path`` a non-empty string; ``raw`` a ``{str: finite number or null}`` dict;
    ``score`` a finite number or null; ``level`` an int >= 0 or null; ``error`` a string.
    """
    if not isinstance(rec, dict) or not isinstance(rec.get("path"), str) or not rec["path"]:
        return False
    raw = rec.get("raw")
    if raw is not None and not (isinstance(raw, dict) and all(
            isinstance(k, str) and (v is None or (_number(v) and math.isfinite(v))) for k, v in raw.items())):
        return False
    score = rec.get("score")
    if score is not None and not (_number(score) and math.isfinite(score)):
        return False
    level = rec.get("level")
    if level is not None and not (isinstance(level, int) and not isinstance(level, bool) and level >= 0):
        return False
    return rec.get("error") is None or isinstance(rec["error"], str)


def _parse_constant(name: str) -> float:
    return float(name)  # NaN / Infinity parse; valid_record then refuses them


def read_manifest(path: str | os.PathLike, counts: Optional[dict] = None) -> list[dict]:
    """All records of a manifest; a missing file is empty.

    A line of any other shape (torn, invalid JSON, nested too deep, wrong field
    types, non-finite numbers) is skipped with one warning; the number skipped
    is added to ``counts["skipped_lines"]`` when ``counts`` is given.
    """
    path = Path(path)
    if not path.exists():
        return []
    records, bad = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line, parse_constant=_parse_constant)
            except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
                bad += 1
                continue
            if valid_record(rec):
                records.append(rec)
            else:
                bad += 1
    if bad:
        warnings.warn(f"{path}: skipped {bad} unreadable line(s) (an interrupted write, or not a scores "
                      f"manifest record)", stacklevel=2)
    if counts is not None:
        counts["skipped_lines"] = counts.get("skipped_lines", 0) + bad
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
    """``{member: [finite raw scores]}`` over error-free records (for :meth:`Calibration.fit`)."""
    out: dict[str, list[float]] = {}
    for rec in records:
        if rec.get("error") or not isinstance(rec.get("raw"), dict):
            continue
        for name, value in rec["raw"].items():
            if (members is None or name in members) and _number(value) and math.isfinite(value):
                out.setdefault(name, []).append(float(value))
    return out
