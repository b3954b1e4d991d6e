"""Score files from elsewhere: a CSV of per-image scores -> the scores manifest + calibration.

The IQPFR authors published their FFHQ scores as ``basicsr/IQA/musiq/out/FFHQ_512_score_80.csv``
(fengyang1399-pixel/IQPIR; columns ``image_name,musiq``, scores already scaled to about [0, 1], one value
negative). :func:`import_scores` reads such a file: the path column (default: the first) and a score
column, every value a finite number. Records are written as :mod:`iqprior.scoring.manifest` does, with
``raw = {"csv:<column>": value}``:

- default (``normalise=False``): ``score`` = the value clipped to [0, 1] (clipped values are counted and
  warned about), ``level = floor(10·score)``, ``normalised_by: "import"`` — the authors' own use
  (``normalize_quality: false`` in their Stage II configs);
- ``normalise=True``: ``score`` = the dataset min-max of the column (paper App. 6.1.2, as
  ``iqprior score --calibrate``), ``normalised_by: "calibration"``.

The calibration (min and max of the column) is written beside the manifest either way, and a summary
with the level histogram of both readings.
"""
from __future__ import annotations

import csv
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..io import atomic_write_text
from ..levels import DEFAULT_LEVELS

RAW_PREFIX = "csv:"


@dataclass
class ImportResult:
    manifest: Path
    calibration: Path
    summary: Path
    count: int
    clipped: int
    histogram_raw: list[int]      # levels of the values clipped to [0, 1]
    histogram_minmax: list[int]   # levels of the min-max normalised values


def read_score_csv(path: str | os.PathLike, column: str, path_column: Optional[str] = None
                   ) -> list[tuple[str, float]]:
    """``[(path, value)]`` of a CSV with a header; ``ValueError`` naming the row for anything unusable."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise ValueError(f"{path} is empty; expected a header such as image_name,{column}")
            header = [h.strip() for h in header]
            if column not in header:
                raise ValueError(f"{path} has no column {column!r} (columns: {', '.join(header)}); "
                                 "pass --column NAME")
            pcol = header[0] if path_column is None else path_column
            if pcol not in header:
                raise ValueError(f"{path} has no path column {pcol!r} (columns: {', '.join(header)})")
            ci, pi = header.index(column), header.index(pcol)
            rows = []
            for n, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) <= max(ci, pi):
                    raise ValueError(f"{path} line {n}: {len(row)} field(s), expected {len(header)}")
                name, text = row[pi].strip(), row[ci].strip()
                if not name:
                    raise ValueError(f"{path} line {n}: empty {pcol!r}")
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"{path} line {n}: {column} value {text[:40]!r} of {name} is not a number"
                                     ) from None
                if not math.isfinite(value):
                    raise ValueError(f"{path} line {n}: {column} value {text[:40]!r} of {name} is not finite")
                rows.append((name, value))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text CSV") from None
    if not rows:
        raise ValueError(f"{path} has a header but no rows")
    return rows


def import_scores(csv_path: str | os.PathLike, column: str, out: str | os.PathLike,
                  path_column: Optional[str] = None, normalise: bool = False,
                  calibration_path: Optional[str | os.PathLike] = None,
                  levels: int = DEFAULT_LEVELS) -> ImportResult:
    """Write the manifest ``out`` (atomically), its calibration and summary; see the module docstring."""
    from .calibration import Calibration
    from .job import side_paths
    from .manifest import write_manifest

    rows = read_score_csv(csv_path, column, path_column)
    member = RAW_PREFIX + column
    cal = Calibration.fit({member: [v for _, v in rows]}, lower_better={member: False})
    clipped = sum(1 for _, v in rows if not 0.0 <= v <= 1.0)
    if clipped:
        warnings.warn(f"{clipped} of {len(rows)} {column} value(s) outside [0, 1] clipped to it", stacklevel=2)
    hist_raw, hist_mm = [0] * levels, [0] * levels
    records = []
    for name, v in rows:
        raw_score = min(max(v, 0.0), 1.0)
        mm_score = min(max(float(cal.normalise(member, v)), 0.0), 1.0)
        raw_level, mm_level = _level(raw_score, levels), _level(mm_score, levels)
        hist_raw[raw_level] += 1
        hist_mm[mm_level] += 1
        score, level = (mm_score, mm_level) if normalise else (raw_score, raw_level)
        records.append({"path": name, "raw": {member: v}, "score": score, "level": level,
                        "normalised_by": "calibration" if normalise else "import"})
    out = Path(out)
    sides = side_paths(out)
    cal_path = Path(calibration_path) if calibration_path else sides["calibration"]
    write_manifest(out, records)
    cal.save(cal_path, extra={"imported_from": str(csv_path), "column": column})
    summary = {"count": len(rows), "imported_from": str(csv_path), "column": column, "clipped": clipped,
               "normalised_by": "calibration" if normalise else "import",
               "min": cal.members[member].min, "max": cal.members[member].max,
               "levels_raw": hist_raw, "levels_minmax": hist_mm}
    atomic_write_text(sides["summary"], json.dumps(summary, indent=2) + "\n")
    return ImportResult(out, cal_path, sides["summary"], len(rows), clipped, hist_raw, hist_mm)


def _level(score: float, levels: int) -> int:
    """``floor(levels·s)`` of a Python float in [0, 1], the top level for 1.0 (as :func:`iqprior.as_levels`)."""
    return min(int(math.floor(score * levels)), levels - 1)


def format_histogram(counts: list[int]) -> str:
    """``"0: 1 (0.0%)  1: ..."`` for a level histogram."""
    total = max(sum(counts), 1)
    return "  ".join(f"{k}: {c} ({100 * c / total:.1f}%)" for k, c in enumerate(counts))
