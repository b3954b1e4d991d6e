"""iqprior: an image-quality prior for image-restoration models (IQPFR, arXiv 2503.09294).

Public API (see docs/architecture.md, "Contract"):

- :func:`create_scorer`, :class:`Calibration`, :func:`score_to_level` — the NR-IQA ensemble;
- :class:`ScoreEmbedding`, :func:`condition` — condition any network on a quality level;
- :class:`QualityLoss` — the quality-optimisation objective (Eq. 12).

Attributes are imported on first use, so ``import iqprior`` loads no model code.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

# OpenCV reads its pixel cap once, when cv2 loads: set it before anything imports cv2 (iqprior.io.MAX_PIXELS).
# When cv2 was loaded first, OpenCV keeps its default (2**30 pixels); iqprior.io warns once (its own header
# check is the bound then).
OPENCV_CAP_MISSED = "cv2" in sys.modules and "OPENCV_IO_MAX_IMAGE_PIXELS" not in os.environ
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "100000000")

__version__ = "0.1.0"

_LAZY = {
    "create_scorer": "iqprior.scoring",
    "EnsembleScorer": "iqprior.scoring",
    "Calibration": "iqprior.scoring",
    "MetricSpec": "iqprior.scoring",
    "score_to_level": "iqprior.levels",
    "ScoreEmbedding": "iqprior.conditioning",
    "condition": "iqprior.conditioning",
    "ConditionedModule": "iqprior.conditioning",
    "QualityLoss": "iqprior.losses",
    "restore_tiled": "iqprior.tiling",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .conditioning import ConditionedModule, ScoreEmbedding, condition  # noqa: F401
    from .levels import score_to_level  # noqa: F401
    from .losses import QualityLoss  # noqa: F401
    from .scoring import Calibration, EnsembleScorer, MetricSpec, create_scorer  # noqa: F401
    from .tiling import restore_tiled  # noqa: F401


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'iqprior' has no attribute {name!r}")


def __dir__():
    return __all__
