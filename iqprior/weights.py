"""Registry of the official weight files, with a download cache.

Each entry names one released file: where it is published, its sha256 when it
is known (``None`` otherwise: we never invent one; a downloaded file without a
known hash is accepted and its hash is printed so it can be pinned) and the
licence. Which adapter reads which file is kept in the adapter table
(``adapters.specs``), not here.

Where a file is looked for, in order:

1. every directory in ``IQPRIOR_WEIGHTS`` (``os.pathsep``-separated), or a
   file path given there directly;
2. the cache, ``IQPRIOR_CACHE`` or ``$XDG_CACHE_HOME/iqprior/weights``
   (default ``~/.cache/iqprior/weights``);
3. otherwise it is downloaded into the cache (progress bar, sha256 check,
   atomic rename). Without network access this fails with one message naming
   the file, its URL and where to put it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ENV_WEIGHTS = "IQPRIOR_WEIGHTS"
ENV_CACHE = "IQPRIOR_CACHE"
ENV_OFFLINE = "IQPRIOR_OFFLINE"


class WeightsUnavailableError(FileNotFoundError):
    """An official file is not on disk and cannot be downloaded."""


@dataclass(frozen=True)
class WeightFile:
    """One released weight file."""

    name: str                 # file name as released (the cache key)
    url: str                  # release asset URL
    sha256: Optional[str]     # hex digest, or None where not published / not verified
    licence: str
    note: str = ""


_GH = "https://github.com"

REGISTRY: dict[str, WeightFile] = {w.name: w for w in [
    WeightFile("codeformer.pth", f"{_GH}/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",
               None, "S-Lab License 1.0 (non-commercial)"),
    WeightFile("vqgan_code1024.pth", f"{_GH}/sczhou/CodeFormer/releases/download/v0.1.0/vqgan_code1024.pth",
               None, "S-Lab License 1.0 (non-commercial)", "CodeFormer's stage-I VQGAN"),
    WeightFile("detection_Resnet50_Final.pth",
               f"{_GH}/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
               None, "MIT (facexlib)", "RetinaFace ResNet-50 face detector"),
    WeightFile("parsing_parsenet.pth", f"{_GH}/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",
               None, "MIT (facexlib)", "ParseNet face parsing for paste-back masks"),
    WeightFile("DAEFR_model.ckpt", "https://huggingface.co/LIAGM/DAEFR_pretrain_model/resolve/main/DAEFR_model.ckpt",
               None, "see LIAGM/DAEFR"),
    WeightFile("iddpm_ffhq512_ema500000.pth",
               f"{_GH}/zsyOAOA/DifFace/releases/download/V1.0/iddpm_ffhq512_ema500000.pth",
               None, "S-Lab License 1.0 (non-commercial)", "diffusion UNet"),
    WeightFile("swinir_restoration512_L1.pth",
               f"{_GH}/zsyOAOA/DifFace/releases/download/V1.0/swinir_restoration512_L1.pth",
               None, "S-Lab License 1.0 (non-commercial)", "diffused estimator"),
    WeightFile("puie.pth", "https://drive.google.com/uc?export=download&id=1rkGm0l826ybOk_RSJNSZwbKpJc_z2ZkU",
               None, "no licence stated (zhenqifu/PUIE-Net)",
               "Google Drive file linked from the zhenqifu/PUIE-Net README; not in the repository or a release"),
    WeightFile("NU2Net_ckpt.pth", "https://drive.google.com/drive/folders/1foW7uXG0GfdGzIDQEhXA82PJryGRQ3aM",
               None, "CC BY-NC 4.0 (RQ-Wu/UnderwaterRanker)",
               "manual download: a Google Drive folder (or Baidu pan.baidu.com/s/1rImZRgmlRPvVIf7n9_rNTw, "
               "pwd fu7y) linked from the RQ-Wu/UnderwaterRanker README; no direct file URL is published"),
]}


def cache_dir() -> Path:
    """Where downloaded files are kept."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "iqprior" / "weights"


def search_paths() -> list[Path]:
    """Directories (or files) named by ``IQPRIOR_WEIGHTS``, then the cache."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_WEIGHTS, "").split(os.pathsep) if p]
    return extra + [cache_dir()]


def get(name: str) -> WeightFile:
    if name not in REGISTRY:
        import difflib
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"no official weight file named {name!r}{hint}")
    return REGISTRY[name]


def find(name: str) -> Optional[Path]:
    """The local path of file ``name`` if it is on disk, else ``None``."""
    for p in search_paths():
        if p.is_file() and p.name == name:
            return p
        if (p / name).is_file():
            return p / name
    return None


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: Optional[str] = None, progress: bool = True,
             timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` via a temporary file; check ``sha256``; rename atomically.

    Raises :class:`WeightsUnavailableError` when the URL cannot be reached and
    ``ValueError`` on a checksum mismatch (the partial file is removed).
    """
    from tqdm.auto import tqdm

    from .io import atomic_path

    dest = Path(dest)
    if os.environ.get(ENV_OFFLINE) == "1":
        raise WeightsUnavailableError(f"{ENV_OFFLINE}=1: not downloading {url}")
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http(s)/file URLs we list)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsUnavailableError(f"cannot download {url}: {reason}") from None
    if "text/html" in (response.headers.get("Content-Type") or ""):
        response.close()
        raise WeightsUnavailableError(f"{url} answered with a web page, not the file (a login or folder page?); "
                                      f"download it by hand")
    h = hashlib.sha256()
    total = int(response.headers.get("Content-Length") or 0) or None
    with response, atomic_path(dest) as tmp, open(tmp, "wb") as out, \
            tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
            h.update(block)
            bar.update(len(block))
        out.flush()
        digest = h.hexdigest()
        if sha256 is not None and digest != sha256.lower():
            raise ValueError(f"sha256 mismatch for {url}: got {digest}, expected {sha256}; file discarded")
    return dest


def resolve(name: str, download_missing: bool = True, progress: bool = True) -> Path:
    """Local path of official file ``name``, downloading it into the cache if needed."""
    entry = get(name)
    found = find(name)
    if found is not None:
        return found
    dest = cache_dir() / name
    if not download_missing:
        raise WeightsUnavailableError(_missing_message(entry, dest, "downloads are disabled"))
    try:
        return download(entry.url, dest, entry.sha256, progress=progress)
    except WeightsUnavailableError as e:
        raise WeightsUnavailableError(_missing_message(entry, dest, str(e))) from None


def _missing_message(entry: WeightFile, dest: Path, reason: str) -> str:
    return (f"official weight file {entry.name!r}{' (' + entry.note + ')' if entry.note else ''} is not on disk and could not be "
            f"downloaded ({reason}). Download it from {entry.url} and put it in {dest.parent} "
            f"or in a directory named by {ENV_WEIGHTS}.")


def verify(name: str) -> tuple[Path, str, Optional[bool]]:
    """``(path, sha256, ok)`` for a local file; ``ok`` is ``None`` when no hash is registered."""
    entry = get(name)
    path = find(name)
    if path is None:
        raise WeightsUnavailableError(_missing_message(entry, cache_dir() / name, "not found locally"))
    digest = sha256_of(path)
    return path, digest, (None if entry.sha256 is None else digest == entry.sha256.lower())


def copy_into_cache(path: str | os.PathLike) -> Path:
    """Copy a file obtained elsewhere into the cache under its registered name."""
    path = Path(path)
    get(path.name)
    dest = cache_dir() / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    return dest
