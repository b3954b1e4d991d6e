"""Training and evaluation datasets with quality scores (IQPFR, arXiv 2503.09294, §3.1–3.2, App. 6.1.2–6.1.3).

Every item is a dict::

    lq, gt   (3, H, W) float32 RGB in [0, 1]
    score    0-d float32: the GT's ensemble quality score in [0, 1] (higher is better)
    level    0-d long: the condition level floor(10 * score) clipped to 0..9
    hq_plus  0-d bool: score > hq_threshold (0.9), i.e. the image also trains the HQ+ codebook
    path     str: the GT file

Scores come from the JSONL manifest written by ``iqprior score`` (one object
per line with ``path``, ``raw``, ``score``, ``level``, ``error``), a path to
such a file, or a list of such records. An image with no usable record is an
error naming a few of them, unless ``default_level`` gives them a level
explicitly (their score is then the centre of that level's bin).

Randomness (flip, degradation) is drawn from a generator seeded by
``(seed, epoch, index)``: call :meth:`set_epoch` each epoch; the same triple
always gives the same sample, whatever the worker or rank.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import list_images, read_image_array
from ..levels import DEFAULT_LEVELS, level_to_score, score_to_level
from .degradations import PAPER, DegradationConfig
from .degradations import degrade as degrade_image

ScoresArg = Union[None, str, os.PathLike, Sequence[dict]]
HQ_THRESHOLD = 0.9  # S_thr (App. 6.1.2)


def load_score_records(scores: ScoresArg) -> list[dict]:
    """Records from a manifest path or a list of dicts (``None`` -> empty list)."""
    if scores is None:
        return []
    if isinstance(scores, (str, os.PathLike)):
        from ..scoring.manifest import read_manifest

        if not Path(scores).is_file():
            raise FileNotFoundError(f"no scores manifest at {scores} (write one with `iqprior score`)")
        return list(read_manifest(scores))
    if isinstance(scores, Iterable):
        records = list(scores)
        bad = [r for r in records if not isinstance(r, dict)]
        if bad:
            raise TypeError(f"score records must be dicts with 'path' and 'score', got {type(bad[0]).__name__}")
        return records
    raise TypeError(f"scores must be None, a manifest path or a list of records, got {type(scores).__name__}")


class ScoreTable:
    """Look up a score record by absolute path, path relative to a root, or unique file name."""

    def __init__(self, records: Sequence[dict], root: Optional[Path] = None):
        self.by_abs: dict[str, dict] = {}
        self.by_rel: dict[str, dict] = {}
        by_name: dict[str, list[dict]] = {}
        for r in records:
            if "path" not in r:
                raise ValueError(f"score record without 'path': {r}")
            if r.get("error") or r.get("score") is None:
                continue  # a failed scoring counts as no record
            p = Path(r["path"])
            self.by_abs[_key(p.resolve() if p.is_absolute() or p.exists() else p)] = r
            self.by_rel[_key(p)] = r
            if root is not None and not p.is_absolute():
                self.by_abs[_key((root / p).resolve())] = r
            by_name.setdefault(p.name, []).append(r)
        self.by_name = {k: v[0] for k, v in by_name.items() if len(v) == 1}

    def get(self, path: Path, root: Optional[Path] = None) -> Optional[dict]:
        r = self.by_abs.get(_key(path.resolve()))
        if r is None and root is not None:
            r = self.by_rel.get(_key(path.relative_to(root))) if _is_under(path, root) else None
        if r is None:
            r = self.by_name.get(path.name)
        return r


def _key(p: Path) -> str:
    return Path(p).as_posix()


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def resolve_scores(paths: Sequence[Path], scores: ScoresArg, root: Optional[Path], default_level: Optional[int],
                   levels: int = DEFAULT_LEVELS) -> list[tuple[float, int]]:
    """``(score, level)`` per path; missing records -> ``default_level`` or a ValueError listing some."""
    if default_level is not None and not (isinstance(default_level, int) and 0 <= default_level < levels):
        raise ValueError(f"default_level must be an int in 0..{levels - 1}, got {default_level!r}")
    table = ScoreTable(load_score_records(scores), root)
    out, missing = [], []
    for p in paths:
        r = table.get(p, root)
        if r is None:
            if default_level is None:
                missing.append(p)
                continue
            out.append((float(level_to_score(default_level, levels)), default_level))
            continue
        s = float(r["score"])
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"score {s} of {r['path']} is outside [0, 1]; scores must be ensemble scores")
        lvl = r.get("level")
        if lvl is None:
            lvl = int(score_to_level(s, levels))
        elif not (isinstance(lvl, int) and not isinstance(lvl, bool) and 0 <= lvl < levels):
            raise ValueError(f"level {lvl!r} of {r['path']} is not an int in 0..{levels - 1}; re-score the "
                             f"images with `iqprior score` (or drop the level field)")
        out.append((s, lvl))
    if missing:
        shown = ", ".join(str(p) for p in missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        what = "no scores were given" if scores is None else "the scores manifest has no usable record for them"
        raise ValueError(f"{len(missing)} of {len(paths)} images have no quality score ({what}): {shown}. "
                         "Score them with `iqprior score` and pass the manifest as scores=..., "
                         "or pass default_level=<0..9> to give them a level explicitly.")
    return out


class _ScoredBase(Dataset):
    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws :meth:`__getitem__` uses (call before each epoch)."""
        self.epoch = int(epoch)

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator for sample ``index`` in the current epoch (a function of seed, epoch, index)."""
        return np.random.default_rng([int(self.seed), int(self.epoch), int(index)])

    def _meta(self, score: float, level: int) -> dict[str, Any]:
        return {"score": torch.tensor(score, dtype=torch.float32), "level": torch.tensor(level, dtype=torch.long),
                "hq_plus": torch.tensor(score > self.hq_threshold)}


def _resize(img: np.ndarray, size: Optional[int]) -> np.ndarray:
    if size is None or img.shape[:2] == (size, size):
        return img
    import cv2

    interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_CUBIC
    return np.clip(cv2.resize(img, (size, size), interpolation=interp), 0.0, 1.0)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1).contiguous()


class ScoredImageDataset(_ScoredBase):
    """HQ images with quality scores; LQ made on the fly by Eq. 16.

    Args:
        root: a directory (searched recursively), one image file, or a list of files.
        scores: manifest path, list of records, or ``None`` (then ``default_level`` is required).
        size: square training size (images are resized to it; the paper uses 512); ``None`` keeps sizes.
        degrade: ``True`` = the paper's Eq. 16, a :class:`DegradationConfig`, or ``None``/``False``
            for ``lq = gt`` (Stage I needs only HQ images).
        hq_threshold: S_thr; ``hq_plus = score > hq_threshold``.
        seed: base of the per-sample random generator.
        hflip: random horizontal flip with probability 1/2 (CodeFormer's training set uses it).
        default_level: level for images without a score record (else they are an error).
    """

    def __init__(self, root: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]], scores: ScoresArg = None,
                 size: Optional[int] = 512, degrade: Union[bool, DegradationConfig, None] = True,
                 hq_threshold: float = HQ_THRESHOLD, seed: int = 0, hflip: bool = False,
                 default_level: Optional[int] = None, levels: int = DEFAULT_LEVELS):
        if isinstance(root, (str, os.PathLike)):
            self.root: Optional[Path] = Path(root) if Path(root).is_dir() else None
            self.paths = list_images(root)
        else:
            self.root = None
            self.paths = [Path(p) for p in root]
        if not self.paths:
            raise ValueError(f"no images found in {root}")
        if size is not None and (not isinstance(size, int) or size < 8):
            raise ValueError(f"size must be an int >= 8 or None, got {size!r}")
        if degrade is True:
            degrade = PAPER
        elif degrade is False:
            degrade = None
        if degrade is not None and not isinstance(degrade, DegradationConfig):
            raise TypeError(f"degrade must be True, False, None or a DegradationConfig, got {type(degrade).__name__}")
        self.size, self.degradation = size, degrade
        self.hq_threshold, self.seed, self.hflip, self.levels = float(hq_threshold), int(seed), bool(hflip), levels
        self.scores = resolve_scores(self.paths, scores, self.root, default_level, levels)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        rng = self.rng_for(index)
        gt = _resize(read_image_array(path), self.size)
        if self.hflip and rng.random() < 0.5:
            gt = np.ascontiguousarray(gt[:, ::-1])
        lq = degrade_image(gt, rng, self.degradation) if self.degradation is not None else gt
        score, level = self.scores[index]
        return {"lq": _to_tensor(lq), "gt": _to_tensor(gt), **self._meta(score, level), "path": str(path)}

    @property
    def hq_plus_fraction(self) -> float:
        """Share of images above the HQ+ threshold (the paper has about 8k of 70k)."""
        return sum(s > self.hq_threshold for s, _ in self.scores) / len(self.scores)


class PairedImageDataset(_ScoredBase):
    """Fixed LQ/GT pairs (e.g. a synthetic test set), paired by relative path without extension, then by stem.

    The score and level are the GT image's. ``size`` resizes both (``None`` keeps them; sizes must then
    match for batching). Unpaired files are an error naming a few.
    """

    def __init__(self, lq_root: Union[str, os.PathLike], gt_root: Union[str, os.PathLike], scores: ScoresArg = None,
                 size: Optional[int] = None, hq_threshold: float = HQ_THRESHOLD,
                 default_level: Optional[int] = None, levels: int = DEFAULT_LEVELS):
        lq_root, gt_root = Path(lq_root), Path(gt_root)
        lq_paths, gt_paths = list_images(lq_root), list_images(gt_root)
        gt_by_rel = {_stem_key(p, gt_root): p for p in gt_paths}
        gt_by_stem: dict[str, list[Path]] = {}
        for p in gt_paths:
            gt_by_stem.setdefault(p.stem, []).append(p)
        pairs, unpaired = [], []
        for p in lq_paths:
            g = gt_by_rel.get(_stem_key(p, lq_root))
            if g is None and len(gt_by_stem.get(p.stem, [])) == 1:
                g = gt_by_stem[p.stem][0]
            (pairs.append((p, g)) if g is not None else unpaired.append(p))
        if unpaired:
            shown = ", ".join(str(p) for p in unpaired[:5])
            raise ValueError(f"{len(unpaired)} LQ images have no GT with the same relative path or name "
                             f"in {gt_root}: {shown}")
        if not pairs:
            raise ValueError(f"no images found in {lq_root}")
        self.pairs, self.size, self.hq_threshold, self.levels = pairs, size, float(hq_threshold), levels
        self.gt_root = gt_root
        self.scores = resolve_scores([g for _, g in pairs], scores, gt_root if gt_root.is_dir() else None,
                                     default_level, levels)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lq_path, gt_path = self.pairs[index]
        lq = _resize(read_image_array(lq_path), self.size)
        gt = _resize(read_image_array(gt_path), self.size)
        score, level = self.scores[index]
        return {"lq": _to_tensor(lq), "gt": _to_tensor(gt), **self._meta(score, level), "path": str(gt_path)}


def _stem_key(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if root.is_dir() else Path(path.name)
    return rel.with_suffix("").as_posix()
