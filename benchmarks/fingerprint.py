"""A bit-identity fingerprint of every adapter: what a refactor must not move.

Usage (from the project root; compare two commits on the same machine, floating-point builds differ)::

    python benchmarks/fingerprint.py --out before.json            # on the old commit
    python benchmarks/fingerprint.py --out after.json             # on the new one
    python benchmarks/fingerprint.py --compare before.json after.json

Per registered adapter, built tiny (small random weights, seeded; level embeddings filled with seeded
noise so the level matters), on the exact path: the sha256 of its output bytes at levels 0, 5 and 9 and
with each per-call control, the state-dict keys and shapes, what the rest of the library reads from
it (task, native size, takes a level, controls, export refusal, injection points, fast path, options),
and a ``save_pretrained`` round trip; for ``auto`` and ``auto+``, every tiny spandrel family in every
release layout (:mod:`adapters.auto.tiny`). Random weights: the hashes say "the same numbers", nothing
about quality. Two runs of one commit on one machine give the same file.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

LEVELS = (0, 5, 9)
WITH_MODE = ("codeformer+",)  # "+" adapters with a ``mode`` option: fingerprinted with mode="adain" too


def _digest(t: Any) -> str:
    if isinstance(t, (tuple, list)):
        t = t[0]
    return hashlib.sha256(t.detach().float().contiguous().numpy().tobytes()).hexdigest()[:16]


def _facts(m) -> dict[str, Any]:
    return {"task": m.task, "native_size": m.native_size, "takes_level": bool(m.takes_level),
            "controls": list(m.controls), "export_refused": m.export_refused,
            "injections": [[s.at, s.name, s.mode] for s in m.injections],
            "keys": [[k, list(v.shape)] for k, v in m.state_dict().items()],
            "fast_path": repr(m.fast_path), "options": sorted(m.options)}


def _outputs(m, size: int, controls=()) -> dict[str, str]:
    torch.manual_seed(123)
    x = torch.rand(1, 3, size, size)
    out = {}
    with torch.no_grad():
        for level in LEVELS:
            torch.manual_seed(7)  # DifFace samples noise
            out[f"level{level}"] = _digest(m(x, score=level))
        for c in controls:
            torch.manual_seed(7)
            out[f"{c}=0.3"] = _digest(m(x, score=LEVELS[-1], **{c: 0.3}))
    return out


def _fill_embeddings(m) -> None:
    with torch.no_grad():
        for i, e in enumerate(m.embedding_parameters()):
            e.copy_(torch.randn(e.shape, generator=torch.Generator().manual_seed(11 + i)) * 0.1)


def adapter_fingerprint(name: str, **options: Any) -> dict[str, Any]:
    """The fingerprint of registered adapter ``name`` (not ``auto``/``auto+``), built tiny and seeded."""
    import adapters

    torch.manual_seed(0)
    m = adapters.create(name, tiny=True, exact=True, **options)
    _fill_embeddings(m)
    size = m.native_size or 48
    out = _facts(m)
    out.update(_outputs(m, size, out["controls"]))
    with tempfile.TemporaryDirectory() as d:
        m.save_pretrained(d)
        out["roundtrip"] = _outputs(adapters.create(name, checkpoint=d, exact=True), size)[f"level{LEVELS[-1]}"]
    return out


def auto_fingerprint(name: str, family: str, layout: str) -> dict[str, Any]:
    """The fingerprint of ``auto``/``auto+`` on a tiny ``family`` file saved in ``layout``."""
    import adapters
    from adapters.auto import tiny

    with tempfile.TemporaryDirectory() as d:
        path = tiny.write_tiny_file(family, Path(d) / f"model_{layout}.pth", layout=layout)
        torch.manual_seed(0)
        m = adapters.create(name, checkpoint=str(path), exact=True)
        _fill_embeddings(m)
        out = _facts(m)
        out.update(_outputs(m, tiny.input_size(family)))
    return out


def fingerprint(only: list[str] | None = None, auto: bool = True) -> dict[str, Any]:
    import adapters
    from adapters.auto import tiny

    report: dict[str, Any] = {}
    for name in adapters.list_adapters():
        if name.startswith("auto") or (only and name not in only):
            continue
        try:
            report[name] = adapter_fingerprint(name)
            if name in WITH_MODE:
                report[f"{name} mode=adain"] = adapter_fingerprint(name, mode="adain")
        except Exception as e:  # noqa: BLE001 -- recorded: a build that fails is part of the fingerprint
            report[name] = f"error: {type(e).__name__}: {e}"
    if auto:
        for name in ("auto", "auto+"):
            if only and name not in only:
                continue
            for family in tiny.TINY:
                for layout in tiny.LAYOUTS:
                    try:
                        report[f"{name}/{family}/{layout}"] = auto_fingerprint(name, family, layout)
                    except Exception as e:  # noqa: BLE001
                        report[f"{name}/{family}/{layout}"] = f"error: {type(e).__name__}: {str(e)[:200]}"
    return report


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """One line per adapter and field that differs between two fingerprints."""
    lines = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if isinstance(x, dict) and isinstance(y, dict):
            lines += [f"{name}: {k}: {x.get(k)!r} -> {y.get(k)!r}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
        elif x != y:
            lines.append(f"{name}: {x!r} -> {y!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="write the fingerprint here (JSON); default: standard output")
    p.add_argument("--only", help="comma-separated adapter names (default: all)")
    p.add_argument("--no-auto", action="store_true", help="skip the auto/auto+ families")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="list what differs between two files")
    args = p.parse_args(argv)
    if args.compare:
        a, b = (json.loads(Path(f).read_text()) for f in args.compare)
        diff = compare(a, b)
        print("\n".join(diff) if diff else f"identical ({len(a)} entries)")
        return 1 if diff else 0
    warnings.filterwarnings("ignore")
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    text = json.dumps(fingerprint(only, auto=not args.no_auto), indent=1, sort_keys=True, default=str) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
