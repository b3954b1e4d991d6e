"""What a checkpoint file is, before it is read: its format, where its state dict sits, the readers' errors.

Torch-free, and importing no other iqprior module: :mod:`iqprior.argument_checks` sniffs a
``--checkpoint`` with it before torch is imported, and the readers above it use it
(:mod:`iqprior.torchscript`, :mod:`iqprior.checkpoint`, ``adapters.auto.reading``).

Formats (:func:`sniff`; the readers take the pieces they need):

- ``"torchscript"``: a zip archive written by ``torch.jit.save`` (it has ``constants.pkl``);
- ``"zip"``: any other zip archive, as ``torch.save`` (torch >= 1.6) and PyTorch-Lightning write;
- ``"pickle"``: ``torch.save``'s legacy format, a pickle (protocol 2 to 5);
- ``"safetensors"``: an 8-byte little-endian header length (not beyond the file), then its JSON header.

Layouts: trainers keep the state dict under one of :data:`WRAPPER_KEYS` (the one list every reader
tries, in its order; :func:`prefer` puts a reader's favourite first) and some put one of
:data:`PREFIXES` before every key.
"""
from __future__ import annotations

import os
import zipfile
from typing import Optional

#: the keys a released file keeps its state dict under, in the order every reader tries them: BasicSR's
#: EMA weights (two spellings) before its plain ones, Lightning's ``state_dict`` (and the plain trainers'
#: ``model_state_dict``), then ``net``, ``model`` and GAN trainers' ``generator``
WRAPPER_KEYS = ("params_ema", "params-ema", "params", "state_dict", "model_state_dict", "net", "model", "generator")

#: prefixes a trainer puts before every key: DDP's ``module.``, GAN trainers' ``netG.`` / ``net_g.`` /
#: ``generator.``, ``model.``, and BasicSR's wrappers flattened into a safetensors file (``params_ema.<key>``,
#: as :mod:`iqprior.realesrgan_release` writes them)
PREFIXES = ("module.", "netG.", "net_g.", "model.", "generator.", "params_ema.", "params.")

FORMATS = ("torchscript", "zip", "pickle", "safetensors")


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or does not fit the network it is loaded into."""


class CheckpointRefused(CheckpointError):
    """A checkpoint needs globals outside the allowlist to unpickle (it could run code)."""


def prefer(*first: str) -> tuple[str, ...]:
    """:data:`WRAPPER_KEYS` with ``first`` tried before the others (a reader whose files favour another key)."""
    unknown = [k for k in first if k not in WRAPPER_KEYS]
    if unknown:
        raise ValueError(f"unknown wrapper key(s) {unknown}; the known ones are {WRAPPER_KEYS}")
    return (*first, *(k for k in WRAPPER_KEYS if k not in first))


# -- formats ----------------------------------------------------------------------------------------
def is_zip(path: str | os.PathLike) -> bool:
    """True for a zip archive (``torch.save`` >= 1.6, Lightning ``.ckpt``, ``torch.jit.save``)."""
    return zipfile.is_zipfile(path)


def is_torchscript(path: str | os.PathLike) -> bool:
    """True when ``path`` is a zip archive written by ``torch.jit.save`` (it has ``constants.pkl``)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in z.namelist())
    except Exception:  # noqa: BLE001 -- BadZipFile, OSError, UnicodeDecodeError on a bad name...: not one
        return False


def _head(path: str | os.PathLike, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _is_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5   # PROTO opcode, protocol 2..5


def _is_safetensors(head: bytes, size: int) -> bool:
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size


def is_safetensors(path: str | os.PathLike) -> bool:
    """True when ``path`` starts as a safetensors file does (whatever its name)."""
    return _is_safetensors(_head(path), os.stat(path).st_size)


def sniff(path: str | os.PathLike) -> Optional[str]:
    """The format of the file at ``path``, one of :data:`FORMATS`, or ``None`` for none of them (a few bytes read)."""
    if is_zip(path):
        return "torchscript" if is_torchscript(path) else "zip"
    head = _head(path)
    if _is_pickle(head):
        return "pickle"
    if _is_safetensors(head, os.stat(path).st_size):
        return "safetensors"
    return None
