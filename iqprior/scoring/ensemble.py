"""The NR-IQA ensemble (paper Eq. 9): the mean of per-member normalised scores."""
from __future__ import annotations

import os
from typing import Optional, Sequence

import torch
from torch import nn

from ..fastpath import check_precision
from ..io import check_image_batch
from .calibration import Calibration
from .members import Member, build_member, ensure_all_weights, member_available
from .specs import OPTIONAL_IN_PRESET, PRESETS, MetricSpec, get_spec


class EnsembleScorer(nn.Module):
    """Scores ``(B, 3, H, W)`` RGB images in [0, 1]; higher is better.

    - ``raw(x)``: ``{member: (B,) raw scores}`` (no gradient);
    - ``scorer(x)``: ``(B,)`` ensemble score, each member normalised by the
      calibration (or, for members it lacks, by the documented range), clipped
      to [0, 1] and averaged (no gradient);
    - ``scorer(x, grad=True, clip=False)``: the same with gradients reaching
      ``x`` (differentiable members only), used by :class:`iqprior.QualityLoss`.

    Members are frozen and stay in eval mode whatever ``train()`` says.
    """

    def __init__(self, members: Sequence[Member], calibration: Optional[Calibration] = None, batch_size: int = 8):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.calibration = calibration
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.random_weights: tuple[str, ...] = ()  # members built with random weights (create_scorer sets it)

    @property
    def precision(self) -> str:
        """Autocast of the learned members' networks (``"fp32"`` default; see :class:`Member`)."""
        return self.members[0].precision

    @precision.setter
    def precision(self, value: str) -> None:
        check_precision(value)
        for m in self.members:
            m.precision = value

    @property
    def names(self) -> list[str]:
        return [m.spec.name for m in self.members]

    @property
    def specs(self) -> list[MetricSpec]:
        return [m.spec for m in self.members]

    @property
    def differentiable(self) -> bool:
        return all(s.differentiable for s in self.specs)

    def train(self, mode: bool = True) -> EnsembleScorer:
        super().train(mode)
        for m in self.members:
            m.train(False)
        return self

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def raw(self, x: torch.Tensor, grad: bool = False) -> dict[str, torch.Tensor]:
        """Raw score of every member, ``{name: (B,)}`` on ``x``'s device."""
        check_image_batch(x)
        if grad:
            bad = [s.name for s in self.specs if not s.differentiable]
            if bad:
                raise ValueError(f"members {bad} are not differentiable; leave them out of a loss")
        out: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        dev = self._device()
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            for i in range(0, x.shape[0], self.batch_size):
                chunk = x[i:i + self.batch_size].to(dev)
                for m in self.members:
                    out[m.spec.name].append(m(chunk if grad else chunk.clamp(0, 1)).to(x.device))
        return {n: torch.cat(v) for n, v in out.items()}

    def normalise(self, raw: dict[str, torch.Tensor], clip: bool = True) -> dict[str, torch.Tensor]:
        """Per-member normalised scores (calibration if it has the member, else the documented range)."""
        norm = {}
        for spec in self.specs:
            r = raw[spec.name]
            s = self.calibration.normalise(spec.name, r) if self.calibration and spec.name in self.calibration \
                else spec.normalise(r)
            norm[spec.name] = s.clamp(0.0, 1.0) if clip else s
        return norm

    def combine(self, raw: dict[str, torch.Tensor], clip: bool = True) -> torch.Tensor:
        norm = self.normalise(raw, clip)
        return torch.stack([norm[n] for n in self.names]).mean(dim=0).float()

    def forward(self, x: torch.Tensor, grad: bool = False, clip: bool = True) -> torch.Tensor:
        return self.combine(self.raw(x, grad=grad), clip=clip)


def preset_members(members: str | Sequence[str | MetricSpec]) -> list[MetricSpec]:
    """Resolve a preset name, a comma-separated string or a list of names/specs to specs.

    Optional members of a preset (Q-Align in ``"paper"``) are kept only when available.
    """
    if isinstance(members, str):
        if members in PRESETS:
            names = [n for n in PRESETS[members]
                     if n not in OPTIONAL_IN_PRESET.get(members, ()) or member_available(n)[0]]
            return [get_spec(n) for n in names]
        members = [m.strip() for m in members.split(",") if m.strip()]
    specs = [m if isinstance(m, MetricSpec) else get_spec(m) for m in members]
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"members listed twice: {sorted(dup)}")
    if not specs:
        raise ValueError("no members given")
    return specs


def create_scorer(members: str | Sequence[str | MetricSpec] = "paper",
                  calibration: Optional[Calibration | str | os.PathLike] = None,
                  device: Optional[str | torch.device] = None, pretrained: bool = True,
                  batch_size: Optional[int] = None, precision: str = "fp32") -> EnsembleScorer:
    """Build the ensemble scorer (the contract in docs/architecture.md).

    Args:
        members: ``"paper"``, ``"offline"``, ``"underwater"``, a comma-separated
            string, or a list of member names / :class:`MetricSpec`.
        calibration: a :class:`Calibration`, a path to its JSON, or ``None``
            (members normalised by their documented ranges).
        device: ``"cuda"``/``"cpu"``/a device; default CUDA when available.
        pretrained: ``False`` builds random-weight networks (tests, timing).
        batch_size: images per member call; default 8 on CUDA and 1 on CPU, where
            batching TOPIQ/MUSIQ at 512² was measured 1.2-1.6x *slower* than
            image by image (``benchmarks/bench_scoring.py``).
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"``: autocast of the
            learned members' networks. Opt-in: faster where the hardware has it,
            but the scores move (measured by ``benchmarks/bench_scoring.py``).
    """
    if calibration is not None and not isinstance(calibration, Calibration):
        calibration = Calibration.load(calibration)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if batch_size is None:
        batch_size = 8 if torch.device(device).type == "cuda" else 1
    specs = preset_members(members)
    if pretrained:
        ensure_all_weights(specs)
    built = [build_member(s, device=device, pretrained=pretrained) for s in specs]
    scorer = EnsembleScorer(built, calibration, batch_size=batch_size).eval()
    scorer.precision = precision
    if not pretrained:
        scorer.random_weights = tuple(s.name for s in specs if s.backend == "pyiqa" and s.weights)
    return scorer
