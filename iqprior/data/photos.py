"""Real photographs from installed packages, each with its licence: for tests, examples and ``make demo``.

Nothing here is downloaded or committed: every photo is a file an installed
package ships. scikit-image (a dependency through basicsr) bundles seven of
them in ``skimage/data`` (only the bundled ones are listed: its other images
are pooch downloads); Debian's ``facedetect`` package ships a Grace Hopper
portrait (``apt-get install facedetect``; absent elsewhere, which
:func:`available` reports).

>>> from iqprior.data import photos                                  # doctest: +SKIP
>>> img = photos.load("astronaut")          # (3, 512, 512) RGB float in [0, 1]
>>> photos.materialise("results/photos")    # the files + LICENSES.md + manifest.json

``python -m iqprior.data.photos OUT`` writes the set into ``OUT`` (what
``make demo`` does).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["Photo", "PHOTOS", "PhotoUnavailableError", "path", "load", "available", "materialise"]


class PhotoUnavailableError(FileNotFoundError):
    """The package that ships a photo is not installed."""


@dataclass(frozen=True)
class Photo:
    """One photograph: where an installed package keeps it, and what it is."""

    name: str
    package: str        # "scikit-image" (Python) or "debian:facedetect" (apt)
    file: str           # inside skimage/data, or an absolute path for a Debian package
    licence: str
    credit: str
    faces: int          # faces a person counts in it (0: none)
    note: str = ""

    @property
    def suffix(self) -> str:
        return Path(self.file).suffix


_NASA = "public domain (NASA; 'no known copyright restrictions', scikit-image's notes)"
PHOTOS: dict[str, Photo] = {p.name: p for p in [
    Photo("astronaut", "scikit-image", "astronaut.png", _NASA, "NASA, astronaut Eileen Collins", 1,
          "512x512 colour portrait"),
    Photo("grace_hopper", "debian:facedetect", "/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg",
          "public domain (U.S. Navy photograph; Wikimedia Commons File:Grace_Hopper.jpg)",
          "U.S. Navy, Rear Admiral Grace Hopper (shipped by Debian's facedetect package, GPL-2+)", 1,
          "512x512 colour portrait, JPEG"),
    Photo("camera", "scikit-image", "camera.png", "CC0 (photographer Lav Varshney)", "Lav Varshney", 1,
          "512x512 grey: a photographer behind a camera on a tripod"),
    Photo("coffee", "scikit-image", "coffee.png", "CC0 (photographer Rachel Michetti)",
          "Rachel Michetti, courtesy of Pikolo Espresso Bar", 0, "400x600 colour"),
    Photo("chelsea", "scikit-image", "chelsea.png", "CC0 (photographer Stefan van der Walt)",
          "Stefan van der Walt", 0, "300x451 colour, a cat"),
    Photo("rocket", "scikit-image", "rocket.jpg", "public domain (SpaceX)", "SpaceX, DSCOVR launch on Falcon 9", 0,
          "427x640 colour, JPEG"),
    Photo("clock_motion", "scikit-image", "clock_motion.png",
          "public domain (released by the photographer, Stefan van der Walt)", "Stefan van der Walt", 0,
          "300x400 grey, real horizontal camera-motion blur"),
]}


def _skimage_dir() -> Optional[Path]:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _get(name: str) -> Photo:
    if name not in PHOTOS:
        import difflib
        close = difflib.get_close_matches(name, list(PHOTOS), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"no photo named {name!r} (have {', '.join(PHOTOS)}){hint}")
    return PHOTOS[name]


def path(name: str) -> Path:
    """Where the installed package keeps photo ``name``; :class:`PhotoUnavailableError` when not installed."""
    photo = _get(name)
    if photo.package == "scikit-image":
        root = _skimage_dir()
        where = root / photo.file if root is not None else None
        how = "pip install scikit-image (a basicsr dependency)"
    else:
        where = Path(photo.file)
        how = f"apt-get install {photo.package.split(':', 1)[1]} (Debian/Ubuntu)"
    if where is None or not where.is_file():
        raise PhotoUnavailableError(f"photo {name!r} comes with {photo.package}, which is not installed here "
                                    f"({where or 'no skimage'}); {how}")
    return where


def available(names: Optional[Sequence[str]] = None) -> list[str]:
    """The photos (of ``names``, default all) whose package is installed."""
    out = []
    for n in names or list(PHOTOS):
        try:
            path(n)
        except PhotoUnavailableError:
            continue
        out.append(n)
    return out


def load(name: str):
    """Photo ``name`` as a ``(3, H, W)`` float RGB tensor in [0, 1] (grey photos repeated to three channels)."""
    from ..io import read_image

    return read_image(path(name))


def _write_downscaled(src: Path, out: Path, factor: int) -> None:
    """``src`` shrunk by ``factor`` (bicubic, antialiased), written as PNG at ``out`` (atomic)."""
    import torch.nn.functional as F

    from ..io import write_image

    img = load_file(src)
    h, w = img.shape[-2:]
    if min(h, w) // factor < 16:
        raise ValueError(f"--downscale {factor} leaves {src.name} under 16 px")
    small = F.interpolate(img[None], size=(h // factor, w // factor), mode="bicubic", antialias=True,
                          align_corners=False)[0].clamp(0, 1)
    write_image(out, small)


def load_file(src: Path):
    """A photo file as a (3, H, W) float RGB tensor in [0, 1]."""
    from ..io import read_image

    return read_image(src)


def materialise(dest: str | os.PathLike, names: Optional[Sequence[str]] = None, strict: bool = False,
                downscale: int = 1) -> list[Path]:
    """Copy the photos (default: every available one) into ``dest`` with ``LICENSES.md`` and ``manifest.json``.

    Files keep their bytes (no re-encoding). Missing packages are skipped and
    listed in the manifest, or raise with ``strict=True``. ``downscale`` > 1
    writes each photo shrunk by that factor instead (bicubic, antialiased,
    PNG named ``<name>_x<factor>down.png``): low-resolution real inputs for
    a super-resolution model, with the original as the reference. Re-running
    is idempotent; every write is atomic.
    """
    from ..io import atomic_path

    if int(downscale) != downscale or downscale < 1:
        raise ValueError(f"downscale must be a whole number >= 1, got {downscale}")

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = list(names or PHOTOS)
    for n in wanted:
        _get(n)
    got = wanted if strict else available(wanted)
    written, entries = [], []
    for n in got:
        src, photo = path(n), PHOTOS[n]
        if downscale > 1:
            out = dest / f"{n}_x{int(downscale)}down.png"
            if not out.is_file():
                _write_downscaled(src, out, int(downscale))
        else:
            out = dest / f"{n}{photo.suffix}"
            if not (out.is_file() and out.stat().st_size == src.stat().st_size):
                with atomic_path(out) as tmp:
                    shutil.copyfile(src, tmp)
        written.append(out)
        entries.append({**asdict(photo), "file": out.name, "source_path": str(src),
                        "downscaled": int(downscale)})
    missing = [n for n in wanted if n not in got]
    with atomic_path(dest / "manifest.json") as tmp:
        tmp.write_text(json.dumps({"photos": entries, "missing": missing}, indent=1) + "\n")
    lines = ["# Photos and their licences", "",
             "Copied from installed packages by `python -m iqprior.data.photos` (iqprior.data.photos).", "",
             "| file | licence | credit | from | faces |", "|---|---|---|---|---|"]
    lines += [f"| {e['file']} | {e['licence']} | {e['credit']} | {e['package']} | {e['faces']} |" for e in entries]
    if missing:
        lines += ["", "Not installed here (skipped): " + ", ".join(
            f"{n} ({PHOTOS[n].package})" for n in missing)]
    with atomic_path(dest / "LICENSES.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iqprior.data.photos",
                                description="write the real-photo set (from installed packages) with its licences")
    p.add_argument("out", help="output folder")
    p.add_argument("--only", nargs="*", default=None, help=f"photo names (default all: {', '.join(PHOTOS)})")
    p.add_argument("--downscale", type=int, default=1,
                   help="write each photo shrunk by this factor (bicubic, antialiased): low-resolution inputs")
    args = p.parse_args(argv)
    try:
        files = materialise(args.out, args.only, downscale=args.downscale)
    except (KeyError, OSError, ValueError) as e:
        print(f"iqprior photos: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    missing = json.loads((Path(args.out) / "manifest.json").read_text())["missing"]
    print(f"{len(files)} photo(s) -> {args.out}" + (f" (not installed: {', '.join(missing)})" if missing else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
