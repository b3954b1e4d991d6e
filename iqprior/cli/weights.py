"""``iqprior weights``: list, locate, download and verify the official weight files."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="list / locate / download / verify official weight files",
                       description="Official weight files are looked for in IQPRIOR_WEIGHTS directories, then in the "
                                   "cache (IQPRIOR_CACHE or ~/.cache/iqprior/weights), then downloaded.")
    p.add_argument("action", choices=["list", "path", "download", "verify", "add"])
    p.add_argument("names", nargs="*", help="file names (default: all), or files to add to the cache")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import weights

    names = args.names or list(weights.REGISTRY)
    if args.action == "list":
        import adapters

        used_by = adapters.files_used_by()
        print(f"cache: {weights.cache_dir()}")
        for w in weights.REGISTRY.values():
            where = weights.find(w.name)
            users = ", ".join(used_by.get(w.name, [])) or w.note
            print(f"{w.name:32s} {'present' if where else 'missing':8s} {users:24s} {w.url}")
        return 0
    if args.action == "add":
        for n in args.names:
            print(weights.copy_into_cache(n))
        return 0
    rc = 0
    for n in names:
        try:
            if args.action == "path":
                print(weights.find(n) or f"{n}: missing")
                rc |= weights.find(n) is None
            elif args.action == "download":
                print(weights.resolve(n))
            else:
                path, digest, ok = weights.verify(n)
                status = "no registered sha256" if ok is None else ("ok" if ok else "MISMATCH")
                print(f"{n}: {digest} {status} ({path})")
                rc |= ok is False
        except (weights.WeightsUnavailableError, KeyError) as e:
            print(f"{n}: {e}")
            rc = 1
    return rc
