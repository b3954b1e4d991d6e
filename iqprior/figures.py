"""Figures people would rather see than read: score histograms, comparison grids, level sweeps.

All functions write a PNG (atomically) with matplotlib's Agg backend and return its path.
Images are ``(3, H, W)`` RGB tensors in [0, 1] (clamped for display).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch

from .io import atomic_path
from .levels import DEFAULT_LEVELS


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=fig.dpi, bbox_inches="tight")
    _plt().close(fig)
    return path


def _np(img: torch.Tensor):
    return img.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy()


def score_histogram(scores: Sequence[float], path: str | os.PathLike, threshold: Optional[float] = 0.9,
                    title: Optional[str] = None, bins: int = 50) -> Path:
    """Histogram of ensemble scores in [0, 1] (paper Fig. 2) with the HQ+ threshold and level bins."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    ax.hist(list(scores), bins=bins, range=(0.0, 1.0), color="#4C72B0", edgecolor="white")
    for lv in range(1, DEFAULT_LEVELS):
        ax.axvline(lv / DEFAULT_LEVELS, color="0.85", lw=0.6, zorder=0)
    if threshold is not None:
        n_hq = sum(1 for s in scores if s > threshold)
        ax.axvline(threshold, color="#C44E52", lw=1.5, ls="--", label=f"HQ+ threshold {threshold:g} ({n_hq} above)")
        ax.legend(loc="upper left", frameon=False)
    ax.set_xlim(0, 1)
    ax.set_xlabel("ensemble quality score (level = floor(10 s))")
    ax.set_ylabel("images")
    ax.set_title(title or f"{len(scores)} images")
    return _save(fig, path)


def image_grid(rows: Sequence[Sequence[torch.Tensor]], path: str | os.PathLike,
               row_labels: Optional[Sequence[str]] = None, col_labels: Optional[Sequence[str]] = None,
               cell: float = 2.4) -> Path:
    """A labelled grid of images (e.g. input | model A | model B | GT per row; paper Fig. 4)."""
    if not rows or not rows[0]:
        raise ValueError("image_grid needs at least one row with one image")
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    plt = _plt()
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols, cell * n_rows), dpi=120, squeeze=False)
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(rows[i]) and rows[i][j] is not None:
                ax.imshow(_np(rows[i][j]))
            if i == 0 and col_labels and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=9)
            if j == 0 and row_labels and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def level_sweep(images_by_level: Mapping[int, torch.Tensor], path: str | os.PathLike,
                title: Optional[str] = None, input_image: Optional[torch.Tensor] = None) -> Path:
    """One row: the same face restored at each condition level (paper Fig. 13)."""
    levels = sorted(images_by_level)
    row = ([input_image] if input_image is not None else []) + [images_by_level[lv] for lv in levels]
    labels = (["input"] if input_image is not None else []) + [f"level {lv}" for lv in levels]
    path = image_grid([row], path, col_labels=labels, cell=1.8)
    if title:  # re-open is costly; titles go in via a second small pass only when asked
        plt = _plt()
        img = plt.imread(path)
        fig, ax = plt.subplots(figsize=(img.shape[1] / 120, img.shape[0] / 120 + 0.4), dpi=120)
        ax.imshow(img)
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        _save(fig, path)
    return Path(path)
