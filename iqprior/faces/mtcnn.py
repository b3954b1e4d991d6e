"""MTCNN: a three-stage cascade face detector with five landmarks.

Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", IEEE SPL 2016 (arXiv 1604.02878). Written
here from the paper and the released detector's facts (network shapes,
thresholds, pyramid factor, box conventions); the weights are the released
Caffe models as ported to PyTorch in the PyPI package ``facenet-pytorch``
(MIT), obtained by :mod:`iqprior.faces.mtcnn_weights`.

The cascade:

1. **P-Net** (fully convolutional, 12-px window, stride 2) on an image
   pyramid: scales ``12 / min_face_size * factor**k`` (factor 0.709) while the
   short side stays >= 12 px; windows scoring >= ``thresholds[0]`` become
   boxes, kept by NMS (IoU 0.5) per scale and again (IoU 0.7) over all
   scales, then moved by P-Net's box regression and made square.
2. **R-Net** scores 24-px crops of those boxes (>= ``thresholds[1]``), NMS
   (IoU 0.7), regression, squared again.
3. **O-Net** scores 48-px crops (>= ``thresholds[2]``), regresses the boxes
   and predicts the five points (eyes, nose, mouth corners, in the order
   image-left eye, image-right eye, nose, image-left and image-right mouth
   corner: the order of facexlib's FFHQ template); a last NMS uses the
   intersection over the *smaller* box (0.7).

Pixels are normalised as ``(v - 127.5) / 128`` from 8-bit RGB; crops that
reach past the image border are zero-padded (as the released MATLAB code);
resampling is area averaging. Boxes follow the released code's one-based
convention internally; :meth:`MTCNN.detect` returns zero-based pixel
coordinates (the centre of the top-left pixel is ``(0, 0)``).

The released networks were trained in MATLAB on column-major images, so their
fully connected layers read features flattened in (width, height, channel)
order; :func:`_flatten_wh` keeps that order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PNet", "RNet", "ONet", "MTCNN", "Detection", "nms"]


def _flatten_wh(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, W*H*C)`` in the released models' (width, height, channel) order."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal network: 12x12 window -> face probability and box offsets, fully convolutional."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not face
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` normalised -> (offsets ``(B, 4, h, w)``, face probability ``(B, h, w)``)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.conv4_1(x).softmax(1)[:, 1]


class RNet(nn.Module):
    """Refinement network: 24x24 crop -> face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, 24, 24)`` -> (offsets ``(B, 4)``, face probability ``(B,)``)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_wh(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), self.dense5_1(x).softmax(1)[:, 1]


class ONet(nn.Module):
    """Output network: 48x48 crop -> face probability, box offsets and five points."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)  # x of the five points, then y, relative to the crop

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, 3, 48, 48)`` -> (offsets ``(B, 4)``, points ``(B, 10)``, face probability ``(B,)``)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_wh(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x).softmax(1)[:, 1]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, overlap: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best score first.

    ``boxes`` ``(N, 4)`` are inclusive one-based corners (area ``(x2-x1+1)*(y2-y1+1)``);
    ``overlap`` is ``"union"`` (IoU) or ``"min"`` (intersection over the smaller box).
    """
    if overlap not in ("union", "min"):
        raise ValueError(f"overlap must be 'union' or 'min', got {overlap!r}")
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if overlap == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares of side ``max(w, h)`` about their centres (``w = x2 - x1``)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) * 0.5
    out[:, 1] = boxes[:, 1] + (h - side) * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, offsets: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Move box corners by ``offsets`` (fractions of the box side, ``x2 - x1 + 1`` or without the 1)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out[:, :4] = boxes[:, :4] + offsets * np.stack([w, h, w, h], axis=1)
    return out


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (x1, y1, x2, y2) and ``landmarks`` (5, 2) in zero-based pixels, ``score`` in [0, 1]."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray


class MTCNN(nn.Module):
    """The cascade with its released hyper-parameters.

    Args:
        min_face_size: smallest face searched for, in pixels (20: the released default).
        thresholds: P-, R-, O-Net score thresholds (0.6, 0.7, 0.7).
        factor: pyramid step (0.709, about 1/sqrt(2)).
    """

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709) -> None:
        super().__init__()
        if min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 (P-Net's window), got {min_face_size}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1), got {factor}")
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)

    def scales(self, height: int, width: int) -> list[float]:
        """The pyramid's scales for an image of this size."""
        m = 12.0 / self.min_face_size
        side, out, s = min(height, width) * m, [], m
        while side >= 12:
            out.append(s)
            s *= self.factor
            side *= self.factor
        return out

    def _device(self) -> torch.device:
        return self.pnet.conv1.weight.device

    def _stage1(self, img: torch.Tensor) -> np.ndarray:
        """Candidate boxes ``(N, 5)`` (corners, score) from P-Net on the pyramid."""
        _, _, h, w = img.shape
        found = []
        for s in self.scales(h, w):
            small = F.interpolate(img, size=(math.ceil(h * s), math.ceil(w * s)), mode="area")
            reg, prob = self.pnet((small - 127.5) / 128.0)
            prob, reg = prob[0].cpu().numpy(), reg[0].cpu().numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys) == 0:
                continue
            # window (x, y) of the score map covers input pixels [2x+1, 2x+12] (one-based) at scale s
            boxes = np.stack([np.floor((2 * xs + 1) / s), np.floor((2 * ys + 1) / s),
                              np.floor((2 * xs + 12) / s), np.floor((2 * ys + 12) / s),
                              prob[ys, xs]], axis=1)
            offsets = reg[:, ys, xs].T
            keep = nms(boxes[:, :4], boxes[:, 4], 0.5)
            found.append(np.concatenate([boxes[keep], offsets[keep]], axis=1))
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        moved = _regress(boxes[:, :5], boxes[:, 5:9], plus_one=False)
        return _square(moved)

    @staticmethod
    def _crops(img: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
        """``size``² crops of the integer boxes (one-based, inclusive), zero-padded past the border."""
        _, c, h, w = img.shape
        out = []
        for x1, y1, x2, y2 in np.trunc(boxes[:, :4]).astype(np.int64):
            bw, bh = x2 - x1 + 1, y2 - y1 + 1
            patch = img.new_zeros(1, c, max(bh, 1), max(bw, 1))
            sx1, sy1, sx2, sy2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
            if sx2 >= sx1 and sy2 >= sy1:
                patch[:, :, sy1 - y1:sy2 - y1 + 1, sx1 - x1:sx2 - x1 + 1] = img[:, :, sy1 - 1:sy2, sx1 - 1:sx2]
            out.append(F.interpolate(patch, size=(size, size), mode="area"))
        return (torch.cat(out) - 127.5) / 128.0

    @torch.no_grad()
    def detect(self, image: torch.Tensor) -> list[Detection]:
        """Faces in ``image``: ``(3, H, W)`` RGB in [0, 1] (or [0, 255] uint8), best score first."""
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an RGB image (3, H, W), got {tuple(image.shape)}")
        img = image.to(self._device())
        img = img.float() if img.dtype == torch.uint8 else (img.float().clamp(0, 1) * 255.0).round()
        img = img[None]
        boxes = self._stage1(img)
        if len(boxes) == 0:
            return []
        boxes[:, :4] = np.trunc(boxes[:, :4])  # the released code works on whole-pixel boxes from here on
        reg, prob = self.rnet(self._crops(img, boxes, 24))
        ok = (prob >= self.thresholds[1]).cpu().numpy()
        boxes, reg = np.concatenate([boxes[ok, :4], prob.cpu().numpy()[ok, None]], 1), reg.cpu().numpy()[ok]
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        if len(boxes) == 0:
            return []
        boxes[:, :4] = np.trunc(boxes[:, :4])
        reg, pts, prob = self.onet(self._crops(img, boxes, 48))
        ok = (prob >= self.thresholds[2]).cpu().numpy()
        boxes = np.concatenate([boxes[ok, :4], prob.cpu().numpy()[ok, None]], 1)
        reg, pts = reg.cpu().numpy()[ok], pts.cpu().numpy()[ok]
        side_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        side_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = boxes[:, 0:1] + side_w * pts[:, :5] - 1  # one-based -> zero-based
        ys = boxes[:, 1:2] + side_h * pts[:, 5:] - 1
        boxes = _regress(boxes, reg)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7, "min")
        return [Detection(boxes[k, :4].copy(), float(boxes[k, 4]), np.stack([xs[k], ys[k]], 1).astype(np.float64))
                for k in keep]

    def landmarks(self, image: torch.Tensor, eye_dist_threshold: Optional[float] = None) -> list[np.ndarray]:
        """Five points ``(5, 2)`` per face; faces whose eyes are closer than ``eye_dist_threshold`` px dropped."""
        out = []
        for d in self.detect(image):
            if eye_dist_threshold is not None and np.linalg.norm(d.landmarks[0] - d.landmarks[1]) < eye_dist_threshold:
                continue
            out.append(d.landmarks)
        return out
