"""Whole-image face restoration on facexlib's ``FaceRestoreHelper``.

The pipeline of CodeFormer's ``inference_codeformer.py`` (github.com/sczhou/
CodeFormer at b33cc7d), which GFPGAN and DifFace share: RetinaFace (ResNet-50)
detects faces and five landmarks (on a copy resized to 640 on the short side,
eyes closer than 5 px dropped); each face is warped by a similarity transform
onto the FFHQ 512 five-point template; the restored crops are warped back with
the inverse transform and blended with a ParseNet face mask (blurred twice
with a 101-px Gaussian, 10-px border cleared). Without the parsing model a
square soft mask is used (facexlib's fallback).

Where RetinaFace's weights are absent, the default detector is MTCNN
(:mod:`iqprior.faces.mtcnn`, weights from the PyPI wheel ``facenet-pytorch``,
converted into the cache at install time): see :mod:`iqprior.faces.detectors`.

facexlib's own loaders (``init_detection_model``, ``init_parsing_model``)
unpickle ``detection_Resnet50_Final.pth`` and ``parsing_parsenet.pth`` with
``torch.load`` and no ``weights_only``; here the two networks are built from
facexlib's classes (:func:`build_detector`, :func:`build_parser`) and their
files read through :func:`iqprior.checkpoint.read_official_checkpoint`
(``weights_only=True``, strict). The files' directory comes from
:mod:`iqprior.weights` (cache, ``IQPRIOR_WEIGHTS``), so offline use gives a
:class:`iqprior.weights.WeightsUnavailableError` naming the files.
``FacePipeline(load_models=False)`` skips both networks: alignment and
paste-back then work on landmarks the caller supplies (used by the tests).

Images cross this module as ``(3, H, W)`` float RGB tensors in [0, 1].
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence
from unittest import mock

import numpy as np
import torch

__all__ = ["FacePipeline", "FaceCrops", "FFHQ_TEMPLATE_512", "DETECTOR_FILE", "PARSER_FILE", "model_rootpath",
           "build_detector", "build_parser"]

DETECTOR_FILE = "detection_Resnet50_Final.pth"
PARSER_FILE = "parsing_parsenet.pth"
# facexlib's five-point FFHQ template for 512x512 crops (eyes, nose, mouth corners), x/y in pixels
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float64)
DETECT_RESIZE = 640          # CodeFormer: get_face_landmarks_5(resize=640, eye_dist_threshold=5)
EYE_DIST_THRESHOLD = 5


def model_rootpath(files: Sequence[str] = (DETECTOR_FILE, PARSER_FILE), download: bool = True) -> Path:
    """A directory holding facexlib's weight files, resolved through :mod:`iqprior.weights`.

    When the files live in different directories (``IQPRIOR_WEIGHTS`` entries),
    links to them are gathered in ``<cache>/facexlib``.
    """
    from iqprior import weights

    paths = [Path(weights.resolve(f, download_missing=download)) for f in files]
    parents = {p.parent.resolve() for p in paths}
    if len(parents) == 1:
        return parents.pop()
    root = weights.cache_dir() / "facexlib"
    root.mkdir(parents=True, exist_ok=True)
    for p in paths:
        link = root / p.name
        if not link.exists():
            try:
                link.symlink_to(p.resolve())
            except OSError:  # no symlinks here: an atomic copy (never through a symlink at the destination)
                import shutil

                from iqprior.io import atomic_path
                with atomic_path(link) as tmp, open(p, "rb") as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    return root


def build_detector(path: Optional[str | os.PathLike] = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """facexlib's RetinaFace (ResNet-50), loaded from ``path`` (``module.`` prefix stripped) or random."""
    from facexlib.detection.retinaface import RetinaFace

    from iqprior.checkpoint import load_strict, match_prefix, read_official_checkpoint

    net = RetinaFace(network_name="resnet50", half=False, device=torch.device(device))
    if path is not None:
        state = match_prefix(read_official_checkpoint(path, ()), net.state_dict().keys(), ("module.",))
        load_strict(net, state, source=str(path))
    return net.eval().to(device)


def build_parser(path: Optional[str | os.PathLike] = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """facexlib's ParseNet (512², 19 classes), loaded from ``path`` or random."""
    from facexlib.parsing.parsenet import ParseNet

    from iqprior.checkpoint import load_strict, match_prefix, read_official_checkpoint

    net = ParseNet(in_size=512, out_size=512, parsing_ch=19)
    if path is not None:
        state = match_prefix(read_official_checkpoint(path, ()), net.state_dict().keys(), ("module.",))
        load_strict(net, state, source=str(path))
    return net.eval().to(device)


def _to_bgr_uint8(image: torch.Tensor, what: str = "image") -> np.ndarray:
    from iqprior.io import check_finite

    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got {tuple(image.shape)}")
    check_finite(image, what)  # before the uint8 conversion, which would turn NaN into a black pixel
    arr = (image.detach().float().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr[:, :, ::-1])


def _from_bgr_uint8(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr[:, :, ::-1])).permute(2, 0, 1).float() / 255.0


@dataclass
class FaceCrops:
    """Aligned crops of one image: ``faces`` ``(N, 3, S, S)`` in [0, 1], plus what paste-back needs."""

    faces: torch.Tensor
    landmarks: list[np.ndarray]
    affines: list[np.ndarray]
    image_bgr: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.faces.shape[0])


class FacePipeline:
    """Detect, align, restore and paste back faces of whole photos.

    Args:
        device: where the detector and parser run (default: CPU).
        face_size: side of the aligned crops (512 for CodeFormer).
        upscale: output scale of the whole image (CodeFormer's ``--upscale``; 1 keeps the size).
        use_parse: blend with the ParseNet face mask (upstream) instead of a square soft mask; with
            ``detector="auto"`` only when ``parsing_parsenet.pth`` is on disk.
        only_center_face: keep only the face nearest the image centre.
        load_models: ``False`` skips the detector and parser (landmarks must be given).
        root: directory with facexlib's weight files; default from :func:`model_rootpath`.
        detector: ``"auto"`` (RetinaFace if its weights are on disk, else MTCNN), ``"retinaface"``
            or ``"mtcnn"`` (:mod:`iqprior.faces.detectors`).
    """

    def __init__(self, device: Optional[str | torch.device] = None, face_size: int = 512, upscale: float = 1,
                 use_parse: bool = True, only_center_face: bool = False, load_models: bool = True,
                 root: Optional[str | os.PathLike] = None, detector: str = "auto"):
        from facexlib.utils import face_restoration_helper as frh

        from . import detectors

        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        if detector == "auto" and root is not None:  # a given directory of facexlib files decides
            detector = "retinaface" if (Path(root) / DETECTOR_FILE).is_file() else "mtcnn"
        self.detector = detectors.choose_detector(detector) if load_models else "none"
        if detector == "auto" and root is None:
            use_parse = use_parse and detectors.parser_on_disk()
        self.mtcnn = None
        self.device = torch.device(device or "cpu")
        self.face_size = int(face_size)
        self.only_center_face = only_center_face
        self.load_models = load_models
        kwargs = dict(face_size=self.face_size, crop_ratio=(1, 1), det_model="retinaface_resnet50",
                      save_ext="png", use_parse=use_parse and load_models, device=self.device)
        # facexlib's loaders are bypassed: the networks are built and loaded below (safe reader)
        with mock.patch.object(frh, "init_detection_model", lambda *a, **k: None), \
                mock.patch.object(frh, "init_parsing_model", lambda *a, **k: None):
            self.helper = frh.FaceRestoreHelper(upscale, **kwargs)
        if load_models:
            files = ((DETECTOR_FILE,) if self.detector == "retinaface" else ()) + ((PARSER_FILE,) if use_parse else ())
            rootpath = Path(root) if root is not None else (model_rootpath(files) if files else None)
            if self.detector == "retinaface":
                self.helper.face_det = build_detector(rootpath / DETECTOR_FILE, self.device)
            else:
                self.mtcnn = detectors.build_mtcnn(device=self.device)
            if use_parse:
                self.helper.face_parse = build_parser(rootpath / PARSER_FILE, self.device)
        self.use_parse = bool(use_parse and load_models)

    def describe(self) -> str:
        """Which detector and paste-back mask this pipeline uses, in words."""
        from .detectors import describe

        return describe(self.detector, self.use_parse) if self.load_models else "landmarks given, square mask"

    @property
    def template(self) -> np.ndarray:
        """The five-point template (5, 2) in crop pixels."""
        return np.asarray(self.helper.face_template, dtype=np.float64)

    def detect(self, image: torch.Tensor) -> list[np.ndarray]:
        """Five-point landmarks ``(5, 2)`` (x, y pixels) of the faces in ``image`` (3, H, W) in [0, 1]."""
        if not self.load_models:
            raise ValueError("this FacePipeline was built with load_models=False: pass landmarks=")
        if self.mtcnn is not None:
            return self._detect_mtcnn(image)
        h = self.helper
        h.clean_all()
        h.read_image(_to_bgr_uint8(image))
        h.get_face_landmarks_5(only_center_face=self.only_center_face, resize=DETECT_RESIZE,
                               eye_dist_threshold=EYE_DIST_THRESHOLD)
        return [np.asarray(l, dtype=np.float64) for l in h.all_landmarks_5]

    def _detect_mtcnn(self, image: torch.Tensor) -> list[np.ndarray]:
        from iqprior.io import check_finite

        from .detectors import center_face

        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an RGB image (3, H, W), got {tuple(image.shape)}")
        check_finite(image, "image")
        found = [d for d in self.mtcnn.detect(image)
                 if np.linalg.norm(d.landmarks[0] - d.landmarks[1]) >= EYE_DIST_THRESHOLD]
        if self.only_center_face and found:
            found = [found[center_face([d.box for d in found], image.shape[1], image.shape[2])]]
        return [d.landmarks.copy() for d in found]

    def crop(self, image: torch.Tensor, landmarks: Optional[Sequence[np.ndarray]] = None) -> FaceCrops:
        """Aligned crops of ``image``; landmarks default to :meth:`detect`'s. No face: ``len() == 0``."""
        if landmarks is None:
            landmarks = self.detect(image)
        h = self.helper
        h.clean_all()
        bgr = _to_bgr_uint8(image)
        h.read_image(bgr)
        lms = []
        for lm in landmarks:
            lm = np.asarray(lm, dtype=np.float64)
            if lm.shape != (5, 2):
                raise ValueError(f"landmarks must be (5, 2) arrays of x, y pixels, got {lm.shape}")
            lms.append(lm)
        h.all_landmarks_5 = [l.copy() for l in lms]
        h.align_warp_face()
        faces = [_from_bgr_uint8(f) for f in h.cropped_faces]
        s = self.face_size
        stacked = torch.stack(faces) if faces else torch.zeros(0, 3, s, s)
        return FaceCrops(stacked, lms, [np.asarray(a) for a in h.affine_matrices], bgr)

    def paste(self, crops: FaceCrops, restored: torch.Tensor) -> torch.Tensor:
        """Warp ``restored`` ``(N, 3, S, S)`` (clamped to [0, 1]) back into the image of ``crops``."""
        from iqprior.io import check_finite

        if restored.shape[0] != len(crops):
            raise ValueError(f"{len(crops)} faces were cropped but {restored.shape[0]} restored")
        for k, face in enumerate(restored):  # every face, before any conversion
            check_finite(face, f"restored face {k + 1} of {len(crops)}")
        h = self.helper
        h.clean_all()
        h.read_image(crops.image_bgr)
        h.affine_matrices = [a.copy() for a in crops.affines]
        h.get_inverse_affine(None)
        for face in restored:
            h.add_restored_face(_to_bgr_uint8(face, "restored face"))
        if len(crops) == 0:
            import cv2
            hh, ww = crops.image_bgr.shape[:2]
            up = h.upscale_factor
            out = cv2.resize(crops.image_bgr, (int(ww * up), int(hh * up)), interpolation=cv2.INTER_LANCZOS4)
        else:
            out = h.paste_faces_to_input_image()
        return _from_bgr_uint8(out)

    def restore(self, image: torch.Tensor, restore_faces: Callable[[torch.Tensor], torch.Tensor],
                landmarks: Optional[Sequence[np.ndarray]] = None) -> tuple[torch.Tensor, int]:
        """Restore every face of ``image`` with ``restore_faces`` ``(N, 3, S, S) -> (N, 3, S, S)``.

        Returns ``(restored image, number of faces)``; with no face the image is
        returned unchanged (resized by ``upscale``) and the count is 0.
        """
        crops = self.crop(image, landmarks)
        if len(crops) == 0:
            return (image.clone() if self.helper.upscale_factor == 1 else self.paste(crops, crops.faces)), 0
        restored = restore_faces(crops.faces).float().cpu()
        return self.paste(crops, restored.clamp(0, 1) if bool(torch.isfinite(restored).all()) else restored), \
            len(crops)
