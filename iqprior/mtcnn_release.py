"""MTCNN's released weights, rebuilt from the pinned PyPI wheel ``facenet-pytorch`` 2.6.0 (MIT).

The three networks of MTCNN (Zhang et al. 2016; P-, R- and O-Net, 2 MB) ship
as ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` inside that wheel. The package
pins ``torch<2.3``, so it is never installed: the wheel is fetched with pip as
a data archive (:mod:`iqprior.pinned_wheel`, sha256 pinned), the three files
are read with ``weights_only=True`` (:func:`iqprior.checkpoint.safe_load`:
they are plain ``OrderedDict``\\s of float32 tensors in PyTorch's legacy
format; nothing is unpickled beyond tensors) and written as one safetensors
file, keys ``pnet.*``, ``rnet.*``, ``onet.*``, whose sha256 is pinned too (the
conversion is deterministic). :mod:`iqprior.faces.mtcnn` is the network that
reads it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .pinned_wheel import PinnedWheel, obtain_wheel, read_members

__all__ = ["MTCNN_FILE", "SHA256", "WHEEL", "MEMBERS", "convert", "convert_wheel"]

MTCNN_FILE = "mtcnn_facenet-pytorch-2.6.0.safetensors"
SHA256 = "a804a8be262dffc8a1f9f866acf69e3becce0847141b5b98d708a40749e5b409"
WHEEL = PinnedWheel(
    project="facenet-pytorch", version="2.6.0", filename="facenet_pytorch-2.6.0-py3-none-any.whl",
    sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    platform="any", python="3.11", abi="none", licence="MIT")
#: key prefix -> file inside the wheel
MEMBERS = {"pnet": "facenet_pytorch/data/pnet.pt", "rnet": "facenet_pytorch/data/rnet.pt",
           "onet": "facenet_pytorch/data/onet.pt"}


def convert_wheel(wheel: str | os.PathLike, dest: str | os.PathLike, sha256: str | None = SHA256) -> Path:
    """Read the three networks of ``wheel`` (``weights_only=True``) into one safetensors file at ``dest``.

    ``sha256``: the digest the written file must have (checked before it
    replaces anything); ``None`` skips the check.
    """
    import torch
    from safetensors.torch import save_file

    from .checkpoint import read_official_checkpoint
    from .file_hash import sha256_of
    from .io import atomic_path

    blobs = read_members(wheel, list(MEMBERS.values()))
    state: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory(prefix="iqprior-mtcnn-") as tmp:
        for prefix, member in MEMBERS.items():
            part = Path(tmp) / Path(member).name
            part.write_bytes(blobs[member])
            for k, v in read_official_checkpoint(part, ()).items():
                state[f"{prefix}.{k}"] = v.detach().to(torch.float32).contiguous()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as out:
        # one metadata key: safetensors writes several in a per-process random order, which would change the hash
        save_file(dict(sorted(state.items())), str(out),
                  metadata={"source": f"PyPI {WHEEL.project} {WHEEL.version} ({WHEEL.filename}), MIT licence"})
        if sha256 is not None and sha256_of(out) != sha256:
            raise ValueError(f"{MTCNN_FILE} rebuilt from {WHEEL.filename} has sha256 {sha256_of(out)}, expected "
                             f"{sha256}; nothing was written")
    return dest


def convert(name: str, dest: str | os.PathLike) -> Path:
    """The registry's builder: fetch the pinned wheel (pip, if not on disk) and convert it into ``dest``."""
    if name != MTCNN_FILE:
        raise ValueError(f"{name} is not rebuilt from {WHEEL.filename}")
    return convert_wheel(obtain_wheel(WHEEL), dest)
