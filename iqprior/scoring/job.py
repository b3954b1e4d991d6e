"""Scoring a whole image folder: resumable, per-image errors, optional calibration.

:func:`score_directory` walks ``root`` recursively, decodes each image once
for all members, in worker processes that overlap the scoring
(:func:`decoded_images`), batches images of the same size (up to the scorer's
``batch_size``; :func:`size_batches`) and appends one manifest record per image. Images already in the manifest are
skipped, so an interrupted run resumes where it stopped. An image that cannot
be read, or for which a member fails or returns NaN, gets an ``error`` record
and the run goes on.

Under ``torchrun`` every rank scores its shard of the file list into
``<out>.rank<R>.jsonl``; rank 0 then merges the parts into ``<out>`` and
calibrates over all of them.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import torch

from ..distributed import DistInfo, barrier, init_distributed, shard
from ..io import ImageReadError, atomic_write_text, list_images, read_image
from ..levels import DEFAULT_LEVELS, LEVELS, score_to_level
from .calibration import Calibration
from .ensemble import EnsembleScorer
from .manifest import ManifestWriter, latest_by_path, raw_by_member, read_manifest, write_manifest


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run produced."""

    manifest: Path
    scored: int
    errors: int
    skipped: int
    calibration: Optional[Path]
    summary: Optional[Path]
    histogram: Optional[Path]


def side_paths(out: Path) -> dict[str, Path]:
    """Default calibration / summary paths next to the manifest ``out``."""
    stem = out.name[:-len(".jsonl")] if out.name.endswith(".jsonl") else out.stem
    return {"calibration": out.with_name(stem + ".calibration.json"),
            "summary": out.with_name(stem + ".summary.json")}


Decoded = tuple[str, Union[torch.Tensor, str]]   # (relative path, image (3, H, W) or the read error)


class _Files(torch.utils.data.Dataset):
    """Decodes file ``i`` (in a worker process); a read error comes back as its message."""

    def __init__(self, paths: Sequence[Path], names: Sequence[str]):
        self.paths, self.names = list(paths), list(names)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Decoded:
        try:
            return self.names[i], read_image(self.paths[i])
        except ImageReadError as e:
            return self.names[i], str(e)
        except Exception as e:  # noqa: BLE001 -- any decoder failure is this image's error record, never the run's
            line = (str(e).strip().splitlines() or [""])[0][:300]
            return self.names[i], f"{self.paths[i]} cannot be decoded: {type(e).__name__}: {line}"


def default_workers() -> int:
    """Decode workers: one per spare core, at most 4 (0 = decode in this process)."""
    return min(4, max(1, (os.cpu_count() or 1) - 1))


def decoded_images(paths: Sequence[Path], names: Sequence[str], workers: int = 0) -> Iterator[Decoded]:
    """``(name, image or error message)`` in file order; with ``workers`` > 0 the files are decoded in
    that many processes ahead of the consumer (a ``DataLoader`` prefetching 4 files per worker)."""
    data = _Files(paths, names)
    if workers <= 0 or len(data) < 2:
        yield from (data[i] for i in range(len(data)))
        return
    loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=min(workers, len(data)),
                                         prefetch_factor=4)
    yield from loader


def size_batches(items: Iterable[Decoded], batch_size: int, max_held: Optional[int] = None
                 ) -> Iterator[list[Decoded]]:
    """Group decoded images into batches of one size (at most ``batch_size``), errors as batches of one.

    Images of each size wait in their own bucket until it is full, so a folder
    of mixed sizes still gives full batches; when more than ``max_held``
    images (default ``4 * batch_size``) wait, the fullest bucket goes first.
    """
    max_held = max_held or 4 * batch_size
    buckets: dict[tuple[int, ...], list[Decoded]] = {}
    held = 0
    for item in items:
        if isinstance(item[1], str):
            yield [item]
            continue
        bucket = buckets.setdefault(tuple(item[1].shape), [])
        bucket.append(item)
        held += 1
        if len(bucket) >= batch_size:
            held -= len(bucket)
            yield buckets.pop(tuple(item[1].shape))
        elif held > max_held:
            key = max(buckets, key=lambda k: len(buckets[k]))
            held -= len(buckets[key])
            yield buckets.pop(key)
    yield from (b for b in buckets.values() if b)


def _score_batch(scorer: EnsembleScorer, batch: list[tuple[str, torch.Tensor]], device) -> list[dict]:
    x = torch.stack([t for _, t in batch])
    if torch.device(device).type == "cuda":  # pinned, so the copy overlaps the previous batch's scoring
        x = x.pin_memory()
    x = x.to(device, non_blocking=True)
    try:
        raw = scorer.raw(x)
    except Exception as e:  # one bad batch must not stop the run: retry singly to isolate the culprit
        if len(batch) > 1:
            return [r for item in batch for r in _score_batch(scorer, [item], device)]
        return [{"path": batch[0][0], "error": f"scoring failed: {type(e).__name__}: {e}"}]
    records = []
    for i, (rel, _) in enumerate(batch):
        values = {n: float(v[i]) for n, v in raw.items()}
        bad = [n for n, v in values.items() if not math.isfinite(v)]
        if bad:
            records.append({"path": rel, "error": f"member(s) {', '.join(bad)} returned a non-finite score"})
        else:
            records.append({"path": rel, "raw": values})
            if scorer.precision != "fp32":   # reduced-precision scores are marked, never silently mixed
                records[-1]["precision"] = scorer.precision
    return records


def done_paths(previous: dict[str, dict], members: Sequence[str]) -> set[str]:
    """Paths a run may skip: scored without error by every one of ``members``.

    Error records are retried (the cause may be fixed: a file replaced, a bad
    flag corrected), and records made with other members get the missing ones.
    """
    return {path for path, rec in previous.items()
            if not rec.get("error") and isinstance(rec.get("raw"), dict) and all(m in rec["raw"] for m in members)}


def keep_other_members(rec: dict, old: Optional[dict]) -> dict:
    """A re-scored record keeps the raw scores of members this run did not compute."""
    if rec.get("error") or not old or old.get("error") or not isinstance(old.get("raw"), dict):
        return rec
    return {**rec, "raw": {**old["raw"], **rec["raw"]}}


def apply_scores(records: Sequence[dict], scorer_or_specs, calibration: Optional[Calibration],
                 levels: int = DEFAULT_LEVELS) -> list[dict]:
    """Add ``score``/``level``/``normalised_by`` to error-free records."""
    specs = scorer_or_specs.specs if isinstance(scorer_or_specs, EnsembleScorer) else scorer_or_specs
    out = []
    for rec in records:
        rec = dict(rec)
        missing = [spec.name for spec in specs if spec.name not in (rec.get("raw") or {})]
        if not rec.get("error") and rec.get("raw") and missing:  # scored by other members: no score from these
            for k in ("score", "level", "normalised_by"):
                rec.pop(k, None)
        elif not rec.get("error") and rec.get("raw"):
            parts = []
            for spec in specs:
                v = torch.tensor(rec["raw"][spec.name], dtype=torch.float64)
                s = calibration.normalise(spec.name, v) if calibration and spec.name in calibration \
                    else spec.normalise(v)
                parts.append(float(s.clamp(0, 1)))
            score = sum(parts) / len(parts)
            rec["score"] = score
            rec["level"] = int(score_to_level(score, levels))
            rec["normalised_by"] = "calibration" if calibration else "range"
        out.append(rec)
    return out


def summarise(records: Sequence[dict], hq_threshold: float = 0.9) -> dict:
    """Counts, mean and quantiles of the ensemble score, HQ+ count, per-member raw stats."""
    ok = [r for r in records if not r.get("error") and r.get("score") is not None]
    errors = [r for r in records if r.get("error")]
    summary: dict = {"count": len(ok), "errors": len(errors), "hq_threshold": hq_threshold}
    if ok:
        s = torch.tensor([r["score"] for r in ok], dtype=torch.float64)
        q = torch.quantile(s, torch.tensor([0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0], dtype=torch.float64))
        summary.update(mean=float(s.mean()), std=float(s.std()) if len(ok) > 1 else 0.0,
                       quantiles={k: float(v) for k, v in zip(["min", "p05", "p25", "p50", "p75", "p95", "max"], q)},
                       hq_plus=int((s > hq_threshold).sum()),
                       levels={str(lv): int(sum(1 for r in ok if r["level"] == lv)) for lv in LEVELS})
        members = {}
        for name, values in raw_by_member(ok).items():
            v = torch.tensor(values, dtype=torch.float64)
            members[name] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
        summary["members"] = members
    if errors:
        summary["error_examples"] = [{"path": r["path"], "error": r["error"]} for r in errors[:10]]
    return summary


def score_directory(root: str | os.PathLike, scorer: EnsembleScorer, out: str | os.PathLike,
                    calibrate: bool = False, calibration: Optional[str | os.PathLike] = None,
                    hq_threshold: float = 0.9, plot: Optional[str | os.PathLike] = None,
                    progress: bool = True, on_record: Optional[Callable[[dict], None]] = None,
                    dist: Optional[DistInfo] = None, workers: Optional[int] = None) -> ScoreSummary:
    """Score every image under ``root`` into the manifest ``out`` (see the module docstring).

    Args:
        calibrate: fit a :class:`Calibration` over every scored image of the
            manifest (this run and earlier ones) and write it beside ``out``
            (or to ``calibration``); scores and levels then use it.
        calibration: an existing calibration JSON to apply (when not fitting),
            or where to write the fitted one.
        plot: write a histogram of the ensemble scores (paper Fig. 2) here.
        on_record: called with each new record (tests use it to simulate crashes).
        workers: decode processes (default :func:`default_workers`; 0 decodes in this process).
    """
    from tqdm.auto import tqdm

    root, out = Path(root), Path(out)
    dist = dist or init_distributed()
    files = list_images(root)
    if not files:
        raise FileNotFoundError(f"no images under {root}")
    part = out if not dist.enabled else out.with_name(f"{out.name}.rank{dist.rank}")
    previous = {**latest_by_path(read_manifest(out)), **latest_by_path(read_manifest(part))}
    done = done_paths(previous, scorer.names)
    rel = lambda p: (p.relative_to(root).as_posix() if root.is_dir() else p.name)  # noqa: E731
    todo = [p for p in shard(files, dist) if rel(p) not in done]
    skipped = len(shard(files, dist)) - len(todo)
    device = scorer._device()
    n_ok = n_err = 0
    with ManifestWriter(part) as writer, tqdm(total=len(todo), desc=f"scoring{f' rank {dist.rank}' if dist.enabled else ''}",
                                              unit="img", disable=not progress) as bar:
        def write(records: list[dict], notify: bool = True) -> None:
            nonlocal n_ok, n_err
            for rec in records:
                rec = keep_other_members(rec, previous.get(rec["path"]))
                writer.write(rec)
                n_err += bool(rec.get("error"))
                n_ok += not rec.get("error")
                if on_record and notify:
                    on_record(rec)
            bar.update(len(records))

        images = decoded_images(todo, [rel(p) for p in todo], default_workers() if workers is None else workers)
        for batch in size_batches(images, scorer.batch_size):
            if isinstance(batch[0][1], str):   # unreadable file
                write([{"path": batch[0][0], "error": batch[0][1]}], notify=False)
            else:
                write(_score_batch(scorer, batch, device))

    if dist.enabled:
        import torch.distributed as tdist

        counts = torch.tensor([n_ok, n_err, skipped], dtype=torch.long, device=device)
        tdist.all_reduce(counts)  # totals over ranks (also a barrier: every part is complete)
        n_ok, n_err, skipped = (int(c) for c in counts.tolist())
        barrier()
        if not dist.is_main:
            return ScoreSummary(part, n_ok, n_err, skipped, None, None, None)
        merged = latest_by_path(read_manifest(out))
        for r in range(dist.world_size):
            p = out.with_name(f"{out.name}.rank{r}")
            merged.update(latest_by_path(read_manifest(p)))
        write_manifest(out, merged.values())
        for r in range(dist.world_size):
            out.with_name(f"{out.name}.rank{r}").unlink(missing_ok=True)

    return finalise(out, scorer, calibrate, calibration, hq_threshold, plot, n_ok, n_err, skipped)


def random_note(scorer: EnsembleScorer) -> dict:
    """``{"random_weights": [...], "note": ...}`` when members have random weights, else ``{}``."""
    names = list(getattr(scorer, "random_weights", ()))
    if not names:
        return {}
    return {"random_weights": names,
            "note": f"RANDOM weights for {', '.join(names)} (--random-weights): these scores are meaningless"}


def finalise(out: Path, scorer: EnsembleScorer, calibrate: bool, calibration, hq_threshold: float, plot,
             n_ok: int = 0, n_err: int = 0, skipped: int = 0) -> ScoreSummary:
    """Calibrate (optionally), add scores and levels, write summary and histogram."""
    paths = side_paths(out)
    counts: dict = {}
    records = list(latest_by_path(read_manifest(out, counts=counts)).values())
    cal_path = Path(calibration) if calibration else paths["calibration"]
    cal = None
    if calibrate:
        raw = raw_by_member(records, scorer.names)
        n_cal = min((len(v) for v in raw.values()), default=0)
        if 0 < n_cal < 2:
            warnings.warn(f"--calibrate over {n_cal} image: min-max over one image is meaningless (every score "
                          f"becomes 0); calibrate on the whole data set, or pass --calibration FILE from one",
                          stacklevel=2)
        if raw:
            cal = Calibration.fit(raw)
            cal.save(cal_path, random_note(scorer))
    elif calibration:
        cal = Calibration.load(calibration)
    elif scorer.calibration is not None:
        cal = scorer.calibration
    records = apply_scores(records, scorer, cal)
    write_manifest(out, records)
    summary = summarise(records, hq_threshold)
    summary["members_used"] = scorer.names
    summary["skipped_lines"] = counts.get("skipped_lines", 0)
    summary["normalised_by"] = "calibration" if cal else "range"
    summary["precision"] = scorer.precision
    summary.update(random_note(scorer))
    if calibrate and cal is not None and min(r.count for r in cal.members.values()) < 2:
        summary["warning"] = "calibrated over one image: min-max over one image is meaningless"
    atomic_write_text(paths["summary"], json.dumps(summary, indent=2) + "\n")
    hist = None
    if plot and summary["count"]:
        from ..figures import score_histogram
        hist = score_histogram([r["score"] for r in records if r.get("score") is not None], plot,
                               threshold=hq_threshold, title=f"{out.name}: {summary['count']} images"
                               + (" (RANDOM weights)" if getattr(scorer, "random_weights", ()) else ""))
    return ScoreSummary(out, n_ok, n_err, skipped, cal_path if cal and calibrate else None, paths["summary"], hist)
