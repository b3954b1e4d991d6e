"""Run every ``benchmarks/bench_*.py`` script, one subprocess each, and collect their output.

    python benchmarks/run_all.py                    # all scripts, their default (CPU) settings
    python benchmarks/run_all.py --only daefr,underwater --timeout 900
    python benchmarks/run_all.py --list

Each script's stdout goes to ``<out>/<name>.out`` (its stderr to ``<name>.err``);
``<out>/summary.md`` lists exit codes and wall times. A script that fails or
times out is reported and the others still run; the exit code is 1 when any
failed. ``make bench`` calls this. The quality and speed commands
(``iqprior bench quality|speed``) need data or a model list and are run by
hand: see benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def scripts(only: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        wanted = {o if o.startswith("bench_") else f"bench_{o}" for o in only}
        unknown = wanted - {p.stem for p in found}
        if unknown:
            raise SystemExit(f"no such benchmark(s): {', '.join(sorted(unknown))} "
                             f"(have: {', '.join(p.stem for p in found)})")
        found = [p for p in found if p.stem in wanted]
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated script names (daefr or bench_daefr)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per script (default 3600)")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks"), help="output folder")
    ap.add_argument("--list", action="store_true", help="list the scripts and exit")
    args = ap.parse_args(argv)

    todo = scripts([o.strip() for o in args.only.split(",") if o.strip()])
    if args.list or not todo:
        print("\n".join(p.stem for p in todo) or "no benchmarks/bench_*.py scripts")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    lines = ["| Benchmark | Exit | Seconds | Output |", "|---|---:|---:|---|"]
    failed = 0
    for script in todo:
        print(f"== {script.stem}", flush=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=args.timeout)
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc = "timeout"
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        secs = time.perf_counter() - t0
        (out / f"{script.stem}.out").write_text(stdout)
        (out / f"{script.stem}.err").write_text(stderr)
        print(stdout.rstrip() or "(no output)")
        if rc != 0:
            failed += 1
            tail = "\n".join(stderr.strip().splitlines()[-5:])
            print(f"!! {script.stem} exited {rc}\n{tail}", file=sys.stderr)
        lines.append(f"| {script.stem} | {rc} | {secs:.0f} | `{out / (script.stem + '.out')}` |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"\n{len(todo) - failed} of {len(todo)} benchmarks succeeded; summary: {out / 'summary.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
