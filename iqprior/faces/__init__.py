"""Whole-image face restoration: detect, align (FFHQ 512), restore, paste back (facexlib).

>>> from iqprior.faces import FacePipeline                               # doctest: +SKIP
>>> pipe = FacePipeline()   # RetinaFace + ParseNet where their files are on disk, else MTCNN + a square mask
>>> out, n_faces = pipe.restore(image, lambda faces: model(faces, score=9))  # doctest: +SKIP

facexlib is imported only when a :class:`FacePipeline` is built.
"""
from __future__ import annotations

from .pipeline import DETECTOR_FILE, FFHQ_TEMPLATE_512, PARSER_FILE, FaceCrops, FacePipeline, model_rootpath

__all__ = ["FacePipeline", "FaceCrops", "FFHQ_TEMPLATE_512", "DETECTOR_FILE", "PARSER_FILE", "model_rootpath"]
