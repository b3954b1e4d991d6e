"""Which face detector whole-photo mode uses, and the offline one (MTCNN) loaded from its weights.

``detector="auto"`` (the default) picks facexlib's RetinaFace when its weight
file ``detection_Resnet50_Final.pth`` is on disk (``IQPRIOR_WEIGHTS`` or the
cache) and MTCNN otherwise: MTCNN's weights come from the PyPI wheel
``facenet-pytorch`` 2.6.0 (MIT), converted once into the weights cache by
``iqprior weights download mtcnn_facenet-pytorch-2.6.0.safetensors`` (``make
install`` runs it), so detection never downloads anything at run time.
``"retinaface"`` and ``"mtcnn"`` force one.

The paste-back mask follows the same rule: facexlib's ParseNet face mask when
``parsing_parsenet.pth`` is on disk, else facexlib's own fallback, the warped
square of the aligned crop, eroded and Gaussian-feathered by a tenth of the
face's side (docs/guides/faces.md says why that mask).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

__all__ = ["DETECTORS", "MTCNN_FILE", "choose_detector", "build_mtcnn", "center_face"]

DETECTORS = ("auto", "retinaface", "mtcnn")
from iqprior.mtcnn_release import MTCNN_FILE  # noqa: E402 (one name, one place)


def choose_detector(detector: str = "auto") -> str:
    """``"retinaface"`` or ``"mtcnn"``: the one ``detector`` names, or for ``"auto"`` the one on disk."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if detector != "auto":
        return detector
    from iqprior import weights

    from .pipeline import DETECTOR_FILE

    return "retinaface" if weights.find(DETECTOR_FILE) is not None else "mtcnn"


def parser_on_disk() -> bool:
    """Whether facexlib's face-parsing weights are on disk (never downloads)."""
    from iqprior import weights

    from .pipeline import PARSER_FILE

    return weights.find(PARSER_FILE) is not None


def build_mtcnn(path: Optional[str | os.PathLike] = None, device: str | torch.device = "cpu",
                download: bool = True):
    """:class:`iqprior.faces.mtcnn.MTCNN` with the released weights (``path``, else resolved by name).

    The file is read with safetensors and loaded strictly (every key and shape).
    """
    from safetensors.torch import load_file

    from iqprior import weights
    from iqprior.checkpoint import load_strict

    from .mtcnn import MTCNN

    net = MTCNN()
    if path is None:
        path = weights.resolve(MTCNN_FILE, download_missing=download)
    load_strict(net, load_file(str(path)), source=str(path))
    return net.eval().to(device)


def center_face(boxes: list[np.ndarray], height: int, width: int) -> int:
    """Index of the box whose centre lies nearest the image centre (facexlib's ``only_center_face``)."""
    if not boxes:
        raise ValueError("no faces to choose from")
    centres = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes])
    return int(np.argmin(np.linalg.norm(centres - np.array([width / 2, height / 2]), axis=1)))


def describe(detector: str, use_parse: bool) -> str:
    """One line for logs: which detector and mask are in use."""
    det = {"retinaface": "RetinaFace (facexlib)", "mtcnn": "MTCNN (facenet-pytorch weights)"}[detector]
    mask = "ParseNet face mask" if use_parse else "feathered square mask"
    return f"{det}, {mask}"


def mtcnn_path() -> Optional[Path]:
    """The MTCNN weight file if it is on disk."""
    from iqprior import weights

    return weights.find(MTCNN_FILE)
