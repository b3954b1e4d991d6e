"""The real photographs of ``iqprior bench real``: files installed with the project's dependencies, nothing fetched.

Two sources, both on disk after the install step: the photographs bundled in
scikit-image's wheel (``skimage/data``; read as files, never through its
``pooch`` downloader) and the project's ``examples/data/whole``. Each is area-
downscaled 1.5x (``cv2.INTER_AREA``) so that its pixels are sharp: the pristine
source that the GTs are graded from and that the held-out outputs are measured
against. Grey photographs are used as three equal channels.

Training and held-out photos are disjoint (different scenes; the stereo pair
``motorcycle_left``/``motorcycle_right`` is one scene, so only one of it is used).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from iqprior import sample_images

from ..control.data import Source

#: training photos: ``skimage:NAME`` (a file of skimage/data) or ``examples:PATH`` (a sample image)
TRAIN_PHOTOS = ("skimage:astronaut.png", "skimage:rocket.jpg", "skimage:motorcycle_left.png",
                "skimage:camera.png", "skimage:brick.png", "skimage:grass.png", "skimage:gravel.png")
#: held-out photos, never seen in training: the evaluation
HELDOUT_PHOTOS = ("skimage:chelsea.png", "skimage:coffee.png", "examples:whole/00.jpg")
#: area downscaling of every photo: sharp pixels, and every photo keeps >= 200 px a side (NIQE needs 192)
DOWNSCALE = 1.5


def photo_path(ref: str) -> Path:
    """The file of a photo reference (``skimage:NAME`` or ``examples:PATH``)."""
    kind, _, name = ref.partition(":")
    if kind == "skimage":
        try:
            import skimage
        except ImportError as e:
            raise ValueError("bench real reads photos bundled with scikit-image (installed with basicsr); "
                             "pip install scikit-image") from e
        return Path(skimage.__file__).resolve().parent / "data" / name
    if kind == "examples":
        return sample_images.root() / name
    raise ValueError(f"photo reference must be 'skimage:NAME' or 'examples:PATH', got {ref!r}")


def load_photo(ref: str, downscale: float = DOWNSCALE) -> Source:
    """One pristine photo, RGB float32 in [0, 1], downscaled ``downscale`` x by area."""
    import cv2

    from iqprior.io import read_image_array

    path = photo_path(ref)
    if not path.is_file():
        raise ValueError(f"photo {ref} not found at {path} (scikit-image's wheel and examples/data ship it)")
    a = read_image_array(path)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = a[..., :3]
    h, w = a.shape[:2]
    if downscale > 1:
        a = cv2.resize(a, (int(w / downscale), int(h / downscale)), interpolation=cv2.INTER_AREA)
    return Source(ref, np.ascontiguousarray(np.clip(a, 0, 1), dtype=np.float32))


def load_photos(train=TRAIN_PHOTOS, heldout=HELDOUT_PHOTOS) -> tuple[list[Source], list[Source]]:
    """``(train, held_out)`` pristine photos; raises if the two lists share a photo."""
    both = set(train) & set(heldout)
    if both:
        raise ValueError(f"training and held-out photos must be disjoint: {sorted(both)}")
    return [load_photo(r) for r in train], [load_photo(r) for r in heldout]
