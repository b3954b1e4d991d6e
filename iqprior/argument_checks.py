"""Argument checks and parsing shared by the applications (the ``iqprior`` sub-commands, the demo app).

The checks run before any model is built or any file is written. Each raises
``ValueError`` with one line that names the flag, the value and what to do;
:func:`iqprior.cli.main` prints it as ``iqprior CMD: error: ...``. Cheap to import
(no torch): the command-line parsers use it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from .checkpoint_format import sniff

#: ``--precision`` values (``iqprior.fastpath.PRECISIONS``; spelled out here so parsers do not import torch)
PRECISIONS = ("fp32", "bf16", "fp16")


def add_precision_flag(p, what: str) -> None:
    """``--precision fp32|bf16|fp16`` (default fp32) on parser ``p``: autocast of ``what``."""
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help=f"autocast {what} (default fp32); bf16/fp16 are faster where the hardware has them but move "
                        f"the numbers (`iqprior bench speed` and docs/experiments/speed.md say by how much)")


def check_out(path: Optional[str | os.PathLike], flag: str = "--out", is_file: bool = False) -> Optional[Path]:
    """``path`` can be created (as a folder, or a file with ``is_file``): no file in the way, writable."""
    if path is None:
        return None
    p = Path(path)
    if is_file and p.is_dir():
        raise ValueError(f"{flag} {p} is a folder; give a file name, e.g. {p / 'scores.jsonl'}")
    if not is_file and p.exists() and not p.is_dir():
        raise ValueError(f"{flag} {p} is a file, not a folder; choose another {flag}")
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {p}: {parent} is a file, not a folder; choose another {flag}")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{flag} {p}: {parent} is not writable; choose another {flag}")
            break
    return p


def check_checkpoint(value: Optional[str], flag: str = "--checkpoint") -> Optional[str]:
    """An existing *file* given as a checkpoint must be a torch or safetensors file (names and folders pass).

    The format is sniffed from the first bytes (:func:`iqprior.checkpoint_format.sniff`), not read.
    """
    if not value:
        return value
    p = Path(value).expanduser()
    if p.is_file():
        if p.stat().st_size == 0:
            raise ValueError(f"{flag} {value} is empty (0 bytes); download it again (`iqprior weights`)")
        if sniff(p) is None:
            raise ValueError(f"{flag} {value} is not a checkpoint (neither a torch .pth/.ckpt nor a .safetensors "
                             f"file); give the model's official file, a save_pretrained folder or 'official'")
    return value


def check_positive(value: Optional[int], flag: str, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise ValueError(f"{flag} must be >= {minimum}, got {value}")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` items -> dict; values parsed as JSON when they parse, else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out
