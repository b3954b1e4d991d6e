"""Pristine sources of the pipeline (:mod:`iqprior.uneven_gt`): the images of a folder, box-downscaled."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np


@dataclass
class Source:
    name: str            # relative path under the data folder
    image: np.ndarray    # (H, W, 3) float32 RGB [0, 1], downscaled


def bundled_data_dir() -> Path:
    """The bundled sample images (:mod:`iqprior.sample_images`, package data)."""
    from iqprior import sample_images

    return sample_images.root()


def load_sources(data_dir: Optional[Path] = None, scales: Mapping[str, int] = {}, default_scale: int = 2,
                 held_out: Sequence[str] = ()) -> tuple[list[Source], list[Source]]:
    """``(train, held_out)`` sources: every image under ``data_dir`` (default: :func:`bundled_data_dir`), in
    :func:`iqprior.io.list_images` order, box-downscaled by ``scales[first folder]`` (else ``default_scale``) so
    that their pixels are sharp; those named in ``held_out`` (paths relative to ``data_dir``) go to the second list.
    """
    import cv2

    from iqprior.io import list_images, read_image_array

    root = Path(data_dir) if data_dir is not None else bundled_data_dir()
    paths = list_images(root)
    if not paths:
        raise ValueError(f"no images under {root}; give a folder of images (--data DIR)")
    train, held = [], []
    for p in paths:
        rel = p.relative_to(root).as_posix()
        k = int(scales.get(rel.split("/")[0], default_scale))
        a = read_image_array(p)
        if k > 1:
            h, w = a.shape[:2]
            a = cv2.resize(a, (w // k, h // k), interpolation=cv2.INTER_AREA)
        (held if rel in held_out else train).append(Source(rel, np.clip(a, 0, 1).astype(np.float32)))
    return train, held
