"""Restore a folder of images with one registered adapter, caching the outputs on disk.

Outputs go to ``<out>/<model>/<relative path>.png`` (lossless), so a second
run reuses every image already written (resumable; the model is not even
built when nothing is left to do) and scores are computed from the files, the
same way for fresh and cached outputs. ``<out>/<model>/bench_meta.json``
records the checkpoint and condition level the outputs were made with; a run
with different settings refuses to mix them unless told to ``overwrite``.

Face adapters (``task == "face"``) get inputs resized to their
``native_size`` (the public test sets are aligned 512x512 crops already).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import torch

log = logging.getLogger("iqprior.bench")

META_NAME = "bench_meta.json"
OFFICIAL = "official"


def parse_list(text: Optional[str]) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_checkpoints(text: Optional[str]) -> dict[str, str]:
    """``"codeformer=cf.pth,codeformer+=runs/cf+/"`` -> ``{name: path}``."""
    out: dict[str, str] = {}
    for item in parse_list(text):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--checkpoints items are NAME=PATH (or NAME=official), got {item!r}")
        out[name.strip()] = path.strip()
    return out


def checkpoint_for(name: str, checkpoints: Mapping[str, str], random_init: bool) -> Optional[str]:
    """The checkpoint of model ``name``: given, else ``"official"``, or ``None`` with ``random_init``."""
    if name in checkpoints:
        return checkpoints[name]
    return None if random_init else OFFICIAL


def image_items(data: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(relative path, path)`` of every image under ``data`` (or the one file ``data``)."""
    from iqprior.io import list_images

    root = Path(data)
    paths = list_images(root)
    if not paths:
        raise ValueError(f"no images found under {root}")
    return [(p.name if root.is_file() else p.relative_to(root).as_posix(), p) for p in paths]


def find_gt(gt_root: Optional[Path], rel: str) -> Optional[Path]:
    """The ground truth of ``rel`` under ``gt_root``: the same relative path, any image extension."""
    if gt_root is None:
        return None
    from iqprior.io import IMAGE_EXTENSIONS

    stem = Path(rel).with_suffix("")
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        p = gt_root / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def output_path(out_dir: Path, rel: str) -> Path:
    return out_dir / Path(rel).with_suffix(".png")


def prepare_input(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(1, 3, H, W)`` -> what the adapter expects: face models at their native square size."""
    size = model.native_size
    if model.task == "face" and size and tuple(x.shape[-2:]) != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False,
                                            antialias=True).clamp_(0, 1)
    return x


def build_model(name: str, checkpoint: Optional[str], device: torch.device | str = "cpu", **options):
    """``adapters.create(name, checkpoint, **options)`` on ``device`` in eval mode.

    Without a checkpoint the random initialisation is seeded, so that a "+"
    model starts from the same weights as its base (equal outputs, delta 0).
    ``options`` may hold ``exact`` and ``precision`` (every adapter takes them).
    """
    import adapters

    if checkpoint is None:
        torch.manual_seed(0)
    return adapters.create(name, checkpoint=checkpoint, **options).to(device).eval()


@dataclass
class RestoreResult:
    """What :func:`restore_folder` did for one model."""

    model: str
    outputs: dict[str, Path] = field(default_factory=dict)   # rel -> restored image
    errors: dict[str, str] = field(default_factory=dict)     # rel -> why it failed
    new: set[str] = field(default_factory=set)             # rels restored by this run (not reused)
    reused: int = 0
    model_error: str = ""                                    # the model could not be built

    @property
    def restored(self) -> int:
        return len(self.new)

    @property
    def ok(self) -> bool:
        return not self.model_error and bool(self.outputs)


def _check_meta(out_dir: Path, meta: dict, overwrite: bool) -> bool:
    """True when cached outputs in ``out_dir`` may be reused; raises on a settings mismatch."""
    path = out_dir / META_NAME
    if not path.is_file():
        return not overwrite
    old = json.loads(path.read_text())
    if old == meta:
        return not overwrite
    if overwrite:
        return False
    raise ValueError(f"{out_dir} holds outputs made with {old}, not {meta}; pass --overwrite to redo them "
                     f"or choose another --out")


def restore_folder(name: str, items: Sequence[tuple[str, Path]], out_dir: Path, checkpoint: Optional[str],
                   device: torch.device | str = "cpu", score: int = 9, overwrite: bool = False,
                   progress: bool = True, source: str = "",
                   builder: Callable[..., torch.nn.Module] = build_model, precision: str = "fp32",
                   exact: bool = False) -> RestoreResult:
    """Restore every image of ``items`` with adapter ``name`` into ``out_dir`` (resumable).

    A model that cannot be built (unknown name, weights missing) or an image
    that fails is recorded in the result, not raised, so one broken model
    does not stop a benchmark of many. ``source`` (the input folder) is
    recorded with the settings so that another folder's images of the same
    names are never taken for cached outputs. ``precision`` (autocast) and
    ``exact`` (the exact path instead of the fast one) are passed to the adapter;
    a reduced precision is recorded with the settings (its outputs differ).
    """
    from tqdm.auto import tqdm

    from iqprior.io import ImageReadError, atomic_write_text, read_image, write_image

    res = RestoreResult(name)
    meta = {"model": name, "checkpoint": None if checkpoint is None else str(checkpoint), "score": score,
            "data": source}
    if precision != "fp32":
        meta["precision"] = precision
    reuse = _check_meta(out_dir, meta, overwrite)
    todo = []
    for rel, src in items:
        dst = output_path(out_dir, rel)
        if reuse and dst.is_file():
            res.outputs[rel] = dst
            res.reused += 1
        else:
            todo.append((rel, src, dst))
    if not todo:
        return res
    try:
        extra = {k: v for k, v in (("precision", precision), ("exact", exact)) if v not in ("fp32", False)}
        model = builder(name, checkpoint, device, **extra)
    except Exception as e:  # unknown adapter, missing weights, bad checkpoint: report, don't crash
        res.model_error = f"{type(e).__name__}: {e}"
        log.warning("model %s not run: %s", name, res.model_error)
        return res
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / META_NAME, json.dumps(meta, indent=2))
    cond_score = score if getattr(model, "takes_level", False) else None
    with torch.inference_mode():
        for rel, src, dst in tqdm(todo, desc=f"restore {name}", disable=not progress, unit="img"):
            try:
                x = prepare_input(model, read_image(src)[None].to(device))
                y = model(x, score=cond_score)
                if isinstance(y, (tuple, list)):
                    y = y[0]
                write_image(dst, y[0].float().cpu())
            except (ImageReadError, RuntimeError, ValueError) as e:
                res.errors[rel] = f"{type(e).__name__}: {e}"
                log.warning("%s failed on %s: %s", name, rel, res.errors[rel])
                continue
            res.outputs[rel] = dst
            res.new.add(rel)
    return res
