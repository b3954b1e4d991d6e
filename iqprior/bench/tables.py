"""Benchmark tables in the layout of the IQPFR paper (arXiv 2503.09294, Tables 1, 2 and 6).

One row per method, one column per metric titled with its direction (↑ higher
is better, ↓ lower is better). Among the methods (the ``Input`` row is not
ranked) the best value of each column is marked **bold** and the second best
_italic_ (the paper's red and blue). A "+" row whose base model is in the
table also shows its improvement over the base, "(+0.074)", signed so that
positive means better in the metric's direction (the paper writes MDFS
18.41 -> 18.08 as "(+0.33)").
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import adapters

from .metrics import BenchMetric

MISSING = "—"


@dataclass
class TableRow:
    """One method: mean raw score per metric key (``None`` = not computed)."""

    name: str
    values: dict[str, Optional[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    ranked: bool = True        # the Input row is shown but not ranked
    note: str = ""             # e.g. why a model did not run
    weights: str = ""          # "random", "official" or the checkpoint path ("" for the Input row)


def base_of(name: str, names: Sequence[str]) -> Optional[str]:
    """The base model of a "+" variant as its spec says (:attr:`adapters.AdapterSpec.base`:
    ``"daefr+"`` -> ``"daefr"``) if it is among ``names``; ``None`` for other rows."""
    try:
        base = adapters.spec(name).base
    except ValueError:  # not a registered adapter (the Input row)
        return None
    return base if base in names else None


def deltas(rows: Sequence[TableRow], metrics: Sequence[BenchMetric]) -> dict[tuple[str, str], float]:
    """``(row, metric key) -> improvement over the base`` for every "+" row whose base is present."""
    by_name = {r.name: r for r in rows}
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        base = base_of(r.name, list(by_name))
        if base is None:
            continue
        for m in metrics:
            v, b = r.values.get(m.key), by_name[base].values.get(m.key)
            if v is not None and b is not None:
                out[(r.name, m.key)] = m.better(v - b)
    return out


def ranks(rows: Sequence[TableRow], metrics: Sequence[BenchMetric]) -> dict[tuple[str, str], int]:
    """``(row, metric key) -> 1`` (best) or ``2`` (second best) among ranked rows; ties share a rank.

    Values are compared as shown (rounded to the metric's decimals).
    """
    out: dict[tuple[str, str], int] = {}
    for m in metrics:
        vals = {r.name: round(m.better(r.values[m.key]), m.decimals) for r in rows
                if r.ranked and r.values.get(m.key) is not None}
        distinct = sorted(set(vals.values()), reverse=True)
        for rank, target in enumerate(distinct[:2], start=1):
            for name, v in vals.items():
                if v == target:
                    out[(name, m.key)] = rank
    return out


def _fmt(value: Optional[float], decimals: int) -> str:
    return MISSING if value is None else f"{value:.{decimals}f}"


def _fmt_delta(delta: float, decimals: int) -> str:
    delta = round(delta, decimals) + 0.0  # no "-0.000"
    return f"({delta:+.{decimals}f})"


LEGEND = ("↑ higher is better, ↓ lower is better. **Bold**: best, _italic_: second best "
          "(the Input row is not ranked). \"(+x)\": improvement of a \"+\" model over its base "
          "(positive = better in the metric's direction).")


def _body(rows: Sequence[TableRow], metrics: Sequence[BenchMetric], unavailable: Mapping[str, str]
          ) -> list[tuple[str, list[str]]]:
    """``(method cell, metric cells)`` per row, with best / second marks and "+" deltas."""
    rk, dl = ranks(rows, metrics), deltas(rows, metrics)
    out = []
    for r in rows:
        cells = []
        for m in metrics:
            v = r.values.get(m.key)
            text = "n/a" if m.key in unavailable else _fmt(v, m.decimals)
            if v is not None:
                mark = rk.get((r.name, m.key))
                text = f"**{text}**" if mark == 1 else f"_{text}_" if mark == 2 else text
                if (r.name, m.key) in dl:
                    text += " " + _fmt_delta(dl[(r.name, m.key)], m.decimals)
            cells.append(text)
        notes = (["RANDOM weights"] if r.weights == "random" else []) + ([r.note] if r.note else [])
        out.append((r.name + (f" ({'; '.join(notes)})" if notes else ""), cells))
    return out


def _footer(metrics: Sequence[BenchMetric], unavailable: Mapping[str, str], notes: Sequence[str]) -> list[str]:
    lines = ["", LEGEND]
    if unavailable:
        lines += ["", "\\* unavailable metrics:"]
        lines += [f"- {next(m.label for m in metrics if m.key == k)}: {why}" for k, why in unavailable.items()]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return lines


def _header(metrics: Sequence[BenchMetric], unavailable: Mapping[str, str], first: Sequence[str]) -> list[str]:
    titles = [m.title + (" *" if m.key in unavailable else "") for m in metrics]
    return ["| " + " | ".join([*first, *titles]) + " |", "|" + "---|" * len(first) + "---:|" * len(metrics)]


def to_markdown(rows: Sequence[TableRow], metrics: Sequence[BenchMetric], title: str = "",
                unavailable: Optional[Mapping[str, str]] = None, notes: Sequence[str] = ()) -> str:
    """The table as GitHub Markdown, with a legend and the reasons for unavailable metrics."""
    unavailable = dict(unavailable or {})
    lines = [f"### {title}", ""] if title else []
    lines += _header(metrics, unavailable, ["Method"])
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in _body(rows, metrics, unavailable)]
    return "\n".join(lines + _footer(metrics, unavailable, notes)) + "\n"


def to_markdown_by_dataset(tables: Sequence[tuple[str, Sequence[TableRow]]], metrics: Sequence[BenchMetric],
                           title: str = "", unavailable: Optional[Mapping[str, str]] = None,
                           notes: Sequence[str] = ()) -> str:
    """Several datasets in one table with a Datasets column (the paper's Table 1); ranks per dataset."""
    unavailable = dict(unavailable or {})
    lines = [f"### {title}", ""] if title else []
    lines += _header(metrics, unavailable, ["Dataset", "Method"])
    for dataset, rows in tables:
        for i, (name, cells) in enumerate(_body(rows, metrics, unavailable)):
            lines.append(f"| {dataset if i == 0 else ''} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines + _footer(metrics, unavailable, notes)) + "\n"


def to_csv(rows: Sequence[TableRow], metrics: Sequence[BenchMetric],
           unavailable: Optional[Mapping[str, str]] = None) -> str:
    """The table as CSV for ``pandas.read_csv``: one header line, one line per method, nothing else.

    Per metric a value column named by the metric's label (full precision),
    ``<label> delta`` (improvement of a "+" model over its base, positive =
    better) and ``<label> rank`` (1 best, 2 second). Directions (higher or
    lower is better) and the reasons for unavailable metrics (empty columns)
    are in the Markdown table and ``quality.json``. ``weights`` is ``random``
    for rows computed with random weights.
    """
    rk, dl = ranks(rows, metrics), deltas(rows, metrics)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["method", "n_images", "weights"]
    for m in metrics:
        header += [m.label, f"{m.label} delta", f"{m.label} rank"]
    w.writerow(header + ["note"])
    for r in rows:
        n = max(r.counts.values(), default=0)
        line: list[object] = [r.name, n, r.weights]
        for m in metrics:
            v = r.values.get(m.key)
            line += ["" if v is None else repr(float(v)),
                     "" if (r.name, m.key) not in dl else repr(float(dl[(r.name, m.key)])),
                     rk.get((r.name, m.key), "")]
        w.writerow(line + [r.note])
    return buf.getvalue()
