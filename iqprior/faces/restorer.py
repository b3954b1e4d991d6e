"""Run any adapter on images: aligned faces, whole photos (face pipeline) or whole images.

Used by ``iqprior restore``; the library-level counterpart of CodeFormer's
``inference_codeformer.py`` loop. Inputs and outputs are ``(3, H, W)`` RGB
tensors in [0, 1]; outputs are clamped to [0, 1] (they are written as images),
except that a non-finite model output (NaN weights, a broken input) stays NaN
for the caller to refuse (:func:`iqprior.io.check_finite`), never a black image.
"""
from __future__ import annotations

from typing import Optional, Protocol, Sequence, runtime_checkable

import torch
import torch.nn.functional as F

from ..levels import ScoreLike

__all__ = ["Restorer", "Runner", "resize_square"]


def _clamp(y: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1], keeping NaN and turning ±Inf into NaN (clamp alone would hide an Inf)."""
    y = y.float()
    return torch.where(torch.isfinite(y), y, torch.full_like(y, float("nan"))).clamp(0, 1)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of ``(B, 3, H, W)`` to ``size``² (antialiased when shrinking); no-op if already."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    shrink = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


@runtime_checkable
class Runner(Protocol):
    """What :class:`Restorer` calls: an :class:`adapters.Adapter` (PyTorch) or an
    :class:`iqprior.export.OnnxModel` (onnxruntime).

    ``task``: ``"face"`` or ``"image"``; ``native_size``: the square size of face crops (``None``: any);
    ``runner(x, score=...)``: ``(B, 3, H, W)`` in [0, 1] -> the same convention, not clamped.
    """

    task: str
    native_size: Optional[int]

    def __call__(self, x: torch.Tensor, score: ScoreLike = ...) -> torch.Tensor: ...


class Restorer:
    """Apply ``model`` (a :class:`Runner`: an adapter or an exported ONNX file) the way its task needs.

    - ``task == "image"``: the whole image at its own size, one at a time.
    - ``task == "face"`` and ``aligned``: crops resized to ``model.native_size``, batched.
    - ``task == "face"`` otherwise: :class:`iqprior.faces.FacePipeline` (built on first use).
    - ``faces=True`` runs an image model (a ``task == "image"`` runner, e.g. Real-ESRGAN) on the
      aligned 512 crops of whole photos the same way: detect, align, restore, paste back. A model
      with ``scale`` s > 1 gets the crop resized to 512/s and gives 512 back; any other output size
      is resized to 512.

    ``detector`` picks the whole-photo face detector (``"auto"``, ``"retinaface"``, ``"mtcnn"``:
    :mod:`iqprior.faces.detectors`).
    """

    def __init__(self, model, device: torch.device | str = "cpu", batch_size: int = 4, aligned: bool = False,
                 upscale: float = 1, only_center_face: bool = False, pipeline=None, detector: str = "auto",
                 faces: bool = False):
        self.model = model
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))
        self.aligned = aligned
        self.task = "face" if faces else model.task
        self.size = (model.native_size or 512) if model.task == "face" else 512
        self.in_size = self.size // max(1, int(getattr(model, "scale", 1) or 1)) if model.task != "face" else self.size
        self._pipeline = pipeline
        self._pipeline_args = dict(device=self.device, face_size=self.size, upscale=upscale,
                                   only_center_face=only_center_face, detector=detector)

    @property
    def batched_files(self) -> bool:
        """Whether several input files can share one forward pass (aligned face crops)."""
        return self.task == "face" and self.aligned

    @property
    def pipeline(self):
        if self._pipeline is None:
            from .pipeline import FacePipeline
            self._pipeline = FacePipeline(**self._pipeline_args)
        return self._pipeline

    @torch.no_grad()
    def run_faces(self, faces: torch.Tensor, score: ScoreLike) -> torch.Tensor:
        """``(N, 3, S, S)`` -> restored ``(N, 3, S, S)`` in [0, 1], ``batch_size`` at a time."""
        outs = []
        for i in range(0, faces.shape[0], self.batch_size):
            x = resize_square(faces[i:i + self.batch_size].to(self.device), self.in_size)
            y = self.model(x, score=score)
            outs.append(_clamp(resize_square(y, self.size)).cpu())  # no-op at the model's own size
        return torch.cat(outs) if outs else faces.clone()

    def input_view(self, image: torch.Tensor) -> torch.Tensor:
        """What the model sees of ``image`` (for side-by-side figures)."""
        if self.task == "face" and self.aligned:
            return resize_square(image[None], self.size)[0]
        return image

    def restore(self, images: Sequence[torch.Tensor], score: ScoreLike) -> list[tuple[torch.Tensor, int]]:
        """Restore each image; returns ``(result, number of faces)`` pairs (``-1`` = not a face task)."""
        if self.task == "image":
            with torch.no_grad():
                return [(_clamp(self.model(img[None].to(self.device), score=score)[0]).cpu(), -1)
                        for img in images]
        if self.aligned:
            batch = torch.cat([resize_square(img[None], self.size) for img in images]) if images else None
            if batch is None:
                return []
            return [(y, 1) for y in self.run_faces(batch, score)]
        return [self.pipeline.restore(img, lambda faces: self.run_faces(faces, score)) for img in images]

    def sweep(self, image: torch.Tensor, levels: Sequence[int]) -> tuple[dict[int, torch.Tensor], int]:
        """``{level: result}`` for one image; faces of a whole photo are detected once."""
        if self.task == "face" and not self.aligned:
            crops = self.pipeline.crop(image)
            if len(crops) == 0:
                return dict.fromkeys(levels, image), 0
            return {lv: self.pipeline.paste(crops, self.run_faces(crops.faces, lv)) for lv in levels}, len(crops)
        out = {}
        n = 0
        for lv in levels:
            (out[lv], n), = self.restore([image], lv)
        return out, n

    def describe(self) -> str:
        """Whole photos: the detector, the paste-back mask and what restores each aligned face, in words."""
        name = getattr(self.model, "adapter_name", type(self.model).__name__)
        if self.model.task == "face":
            how = f"{name} on each aligned {self.size}-px face"
        else:
            how = (f"{name} (an image model, not a face restorer) on each aligned face"
                   + (f", the crop at {self.in_size} px, out at {self.size} px" if self.in_size != self.size else ""))
        return f"{self.pipeline.describe()}; {how}"

    def __repr__(self) -> str:
        return f"Restorer(task={self.task!r}, aligned={self.aligned}, size={self.size}, batch_size={self.batch_size})"

