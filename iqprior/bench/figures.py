"""The paper's figures from benchmark runs (IQPFR, arXiv 2503.09294), drawn with :mod:`iqprior.figures`.

- :func:`comparison_grid`: input | each model | GT for chosen images (Fig. 4, 5),
  from the outputs a ``bench quality`` run cached under ``<results>/<model>/``;
- :func:`level_sweeps`: one "+" model's output at condition levels 0..9 (Fig. 13);
- :func:`manifest_histogram`: the ensemble-score histogram of a dataset (Fig. 2),
  from the manifest ``iqprior score`` writes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch

from .runner import build_model, checkpoint_for, find_gt, image_items, output_path, prepare_input


def parse_levels(text: str, levels: int = 10) -> list[int]:
    """``"0-9"``, ``"0..9"`` or ``"0,3,6,9"`` -> sorted unique levels (see :func:`iqprior.levels.parse_levels`)."""
    from iqprior.levels import parse_levels as _parse

    return _parse(text, levels, flag="--levels")


def _fit(x: torch.Tensor, height: int) -> torch.Tensor:
    """``(3, H, W)`` resized to ``height`` rows, aspect kept."""
    h, w = x.shape[-2:]
    size = (height, max(1, round(w * height / h)))
    return torch.nn.functional.interpolate(x[None], size=size, mode="bicubic", align_corners=False,
                                           antialias=True)[0].clamp(0, 1)


def _random_outputs(out_dir: Path) -> bool:
    """Were the cached outputs in ``out_dir`` made with random weights (``bench_meta.json`` says so)?"""
    import json

    from .runner import META_NAME

    try:
        return json.loads((out_dir / META_NAME).read_text()).get("checkpoint", "") is None
    except (OSError, ValueError, AttributeError):
        return False


def comparison_grid(results: Path, models: Sequence[str], data: Path, gt: Optional[Path],
                    images: Sequence[str], out: Path, size: int = 256) -> Path:
    """Grid with one row per image: input | each model's cached output | GT (when ``gt`` is given)."""
    from iqprior.figures import image_grid
    from iqprior.io import read_image

    if not models:
        raise ValueError("give at least one model (--models)")
    items = dict(image_items(data))
    chosen = list(images) or list(items)[:3]
    unknown = [i for i in chosen if i not in items]
    if unknown:
        raise ValueError(f"images {unknown} are not under {data} (names are relative, e.g. {next(iter(items))!r})")
    rows = []
    for rel in chosen:
        row = [_fit(read_image(items[rel]), size)]
        for m in models:
            p = output_path(Path(results) / m, rel)
            if not p.is_file():
                raise FileNotFoundError(f"no cached output {p}: run `iqprior bench quality --models {m} "
                                        f"--data {data} --out {results}` first")
            row.append(_fit(read_image(p), size))
        if gt is not None:
            g = find_gt(Path(gt), rel)
            row.append(_fit(read_image(g), size) if g is not None else None)
        rows.append(row)
    cols = ["Input", *[m + (" (RANDOM weights)" if _random_outputs(Path(results) / m) else "") for m in models]]
    cols += ["GT"] if gt is not None else []
    return image_grid(rows, out, row_labels=chosen, col_labels=cols)


def level_sweeps(models: Sequence[str], image: Path, out_dir: Path, levels: Sequence[int],
                 checkpoints: Mapping[str, str], random_init: bool = False, device: str = "cpu") -> list[Path]:
    """For each "+" model, ``out_dir/sweep_<model>.png``: its outputs of ``image`` at each level."""
    from iqprior.figures import level_sweep
    from iqprior.io import read_image

    if not models:
        raise ValueError("give at least one '+' model (--models)")
    x = read_image(image)[None].to(device)
    paths = []
    from iqprior.levels import format_levels

    for name in models:
        ckpt = checkpoint_for(name, checkpoints, random_init)
        model = build_model(name, ckpt, device)
        if not getattr(model, "takes_level", False):
            raise ValueError(f"{name} has no score condition; the level sweep needs a '+' model (e.g. {name}+)")
        inp = prepare_input(model, x)
        with torch.inference_mode():
            outs = {lv: model(inp, score=lv)[0].float().cpu().clamp(0, 1) for lv in levels}
        path = Path(out_dir) / f"sweep_{name.replace('+', 'plus')}.png"
        title = f"{name}: condition levels {format_levels(list(levels))}" + (" (RANDOM weights)" if ckpt is None
                                                                           else "")
        paths.append(level_sweep(outs, path, title=title,
                                 input_image=inp[0].cpu()))
    return paths


def manifest_histogram(manifest: Path, out: Path, threshold: float = 0.9, title: Optional[str] = None) -> Path:
    """Histogram of the ensemble scores in a manifest written by ``iqprior score``."""
    from iqprior.figures import score_histogram
    from iqprior.scoring.manifest import scores_by_path

    if not Path(manifest).is_file():
        raise FileNotFoundError(f"manifest not found: {manifest} (write one with `iqprior score DIR --out FILE`)")
    scores = [float(r["score"]) for r in scores_by_path(manifest).values()]
    if not scores:
        raise ValueError(f"{manifest} has no scored images (was it calibrated? `iqprior score --calibrate`)")
    return score_histogram(scores, out, threshold=threshold, title=title or f"{Path(manifest).parent.name}: "
                           f"{len(scores)} images")
