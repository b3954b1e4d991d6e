"""``iqprior weights``: list, locate, download, verify and add the weight files iqprior reads.

Every file is in one registry (:data:`iqprior.weights.REGISTRY`): the official
models' files, the IQA members' files, the face detector and parser,
torchvision trunks and CLIP RN50. ``add FILE`` copies the file into a staging
folder of the cache, checks that this copy loads into the network it is named
for (read with ``weights_only=True``, strict keys and shapes), then installs it
under its registered name atomically.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="list / locate / download / verify / add weight files",
                       description="Weight files are looked for in IQPRIOR_WEIGHTS directories, then in the "
                                   "cache (IQPRIOR_CACHE or ~/.cache/iqprior/weights), then in the dependency's "
                                   "own directory (torch hub, pyiqa, clip), then downloaded. `add FILE` checks "
                                   "that FILE loads into the model it is named for before copying it into the cache.")
    p.add_argument("action", choices=["list", "path", "download", "verify", "add"])
    p.add_argument("names", nargs="*", help="file names (default: all), or files to add to the cache")
    p.set_defaults(run=run)


def _users() -> dict[str, list[str]]:
    """``{file: [adapter or member names]}`` over the adapter and IQA member tables."""
    import adapters

    from ..scoring.specs import SPECS

    out = adapters.files_used_by()
    for spec in SPECS.values():
        for w in spec.weights:
            out.setdefault(w.file, []).append(spec.name)
    return out


def check_file(path: str | Path) -> str:
    """Check that ``path`` loads into the network its name is registered for; return what it fits.

    Raises ``KeyError`` for an unregistered name and
    :class:`iqprior.checkpoint.CheckpointError` when the file is unreadable,
    refused or does not fit.
    """
    from .. import weights

    path = Path(path)
    entry = weights.get(path.name)
    check = _CHECKS[entry.kind]
    return check(path)


def _check_model(path: Path) -> str:
    import adapters

    for name in adapters.list_adapters():
        s = adapters.spec(name)
        if s.is_plus:
            continue
        if s.official_files and s.official_files[0] == path.name:
            adapters.create(name).load_official(path)
            return f"adapter {name}"
        for opt, fname in {**s.official_options, **s.option_files}.items():
            if fname == path.name:
                adapters.create(name, **{opt: str(path)})
                return f"adapter {name} ({opt})"
    from .. import weights

    if weights.get(path.name).rebuilt is not None:  # Real-ESRGAN's files: no adapter of their own, auto reads them
        model = adapters.create("auto", checkpoint=str(path))
        return f"adapter auto ({model.architecture} x{model.scale})"
    raise KeyError(f"no adapter reads {path.name}")


def _check_iqa(path: Path) -> str:
    from ..checkpoint import CheckpointError
    from ..scoring.members import _load_own, build_member
    from ..scoring.specs import SPECS

    if path.name.startswith("LPIPS_"):
        from ..scoring.fullref import check_lpips_layers
        check_lpips_layers(path)
        return "LPIPS linear layers"
    for spec in SPECS.values():
        for w in spec.weights:
            if w.file != path.name:
                continue
            if spec.backend != "pyiqa":  # a published model's files: build it with this one in place
                import importlib

                from ..scoring.members import weight_path
                module, cls = spec.backend.split(":")
                files = {o.file: (path if o.file == w.file else weight_path(o)) for o in spec.weights}
                try:
                    getattr(importlib.import_module(module), cls)(files=files)
                except (OSError, ValueError, KeyError) as e:
                    raise CheckpointError(f"{path} does not build {spec.name}: {e}") from None
            elif spec.builder is not None:
                import importlib

                from ..guarded import guarded_loads
                module, func = spec.builder.split(":")
                with guarded_loads():
                    getattr(importlib.import_module(module), func)({w.file: path})
            else:
                _load_own(build_member(spec, pretrained=False).net, path, w.key)
            return f"IQA member {spec.name}"
    raise KeyError(f"no IQA member reads {path.name}")


def _check_face(path: Path) -> str:
    from ..faces.detectors import MTCNN_FILE, build_mtcnn
    from ..faces.pipeline import DETECTOR_FILE, build_detector, build_parser

    if path.name == MTCNN_FILE:
        build_mtcnn(path)
        return "MTCNN face detector"

    (build_detector if path.name == DETECTOR_FILE else build_parser)(path)
    return "face detector" if path.name == DETECTOR_FILE else "face parser"


def _check_trunk(path: Path) -> str:
    import torchvision

    from ..checkpoint import load_strict, read_official_checkpoint

    arch = path.name.split("-")[0]  # torchvision's names: <arch>[-owt]-<hash>.pth
    net = getattr(torchvision.models, arch)(weights=None)
    load_strict(net, read_official_checkpoint(path, ()), source=str(path))
    return f"torchvision {arch}"


def _check_clip(path: Path) -> str:
    from ..checkpoint import read_official_checkpoint
    from ..scoring.builders import clip_rn50

    clip_rn50(read_official_checkpoint(path, ()), source=str(path))
    return "CLIP RN50"


_CHECKS = {"model": _check_model, "iqa": _check_iqa, "face": _check_face, "trunk": _check_trunk,
           "clip": _check_clip}


def run(args: argparse.Namespace) -> int:
    from .. import weights
    from ..checkpoint import CheckpointError

    names = args.names or list(weights.REGISTRY)
    if args.action == "list":
        used_by = _users()
        print(f"cache: {weights.cache_dir()}")
        for w in weights.REGISTRY.values():
            where = weights.find(w.name)
            users = ", ".join(used_by.get(w.name, [])) or w.note
            print(f"{w.name:36s} {w.kind:6s} {'present' if where else 'missing':8s} {users:28s} {w.url}")
        return 0
    if args.action == "add":
        if not args.names:
            raise ValueError("`iqprior weights add FILE...` needs at least one file")
        missing = [n for n in args.names if not Path(n).is_file()]
        if missing:
            raise FileNotFoundError(f"no such file: {', '.join(missing)} (give the path of a file you downloaded)")
        rc = 0
        for n in args.names:
            try:  # the check runs on the copy that is installed, not on the source (which could change)
                dest, fits = weights.copy_into_cache(n, check=lambda staged: check_file(staged))
            except KeyError as e:
                print(f"{n}: refused: {e.args[0]}")
                rc = 1
                continue
            except (CheckpointError, FileNotFoundError) as e:
                print(f"{n}: refused: {e}")
                rc = 1
                continue
            print(f"{dest} (loads into {fits})")
        return rc
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
