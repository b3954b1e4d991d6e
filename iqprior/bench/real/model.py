"""The three models of ``iqprior bench real``: the released restorer, its "+" and the unconditioned twin.

All three are read from the same released file: ``auto`` (untouched, and the twin
that is fine-tuned without a level) and ``auto+`` (the same network with a
zero-initialised level embedding, :mod:`adapters.auto`). :class:`AtGTSize` lets the
control experiment's training and evaluation (:mod:`iqprior.bench.control`) run an
SR model as they run a same-size restorer: it takes the LQ at the GT's size (Eq. 16
resizes back) and first resizes it by ``1 / scale``, antialiased bicubic, as
``AutoAdapter.finetune_losses`` does, so the network sees the input scale it was
released for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import INJECT_FRACTION, RealConfig


class AtGTSize(nn.Module):
    """``y = m(lq, score=None)``: ``lq`` ``(B, 3, H, W)`` at the GT's size -> the adapter's output at ``H, W``.

    ``H`` and ``W`` must be multiples of the adapter's scale.
    """

    def __init__(self, adapter: nn.Module):
        super().__init__()
        self.adapter = adapter
        self.scale = int(getattr(adapter, "scale", 1))

    def model_input(self, lq: torch.Tensor) -> torch.Tensor:
        """The network's input: ``lq`` resized by ``1 / scale`` (antialiased bicubic), or ``lq`` itself."""
        h, w = lq.shape[-2:]
        if self.scale == 1:
            return lq
        if h % self.scale or w % self.scale:
            raise ValueError(f"the LQ's size {h}x{w} must be a multiple of the model's scale {self.scale}")
        return F.interpolate(lq, size=(h // self.scale, w // self.scale), mode="bicubic", align_corners=False,
                             antialias=True)

    def forward(self, lq: torch.Tensor, score=None) -> torch.Tensor:
        x = self.model_input(lq)
        return self.adapter(x) if score is None else self.adapter(x, score=score)


def resolve_checkpoint(checkpoint: str) -> Path:
    """A path as given, or a weights-registry name found locally (never downloaded: the bench runs offline)."""
    p = Path(checkpoint).expanduser()
    if p.exists():
        return p
    from iqprior import weights

    try:
        return weights.resolve(checkpoint, download_missing=False)
    except Exception as e:  # unknown name or not downloaded: one clear line
        raise ValueError(f"{checkpoint}: no such file and not available locally ({e}); run "
                         f"'iqprior weights download {checkpoint}' first (the install step)") from None


def inject_point(adapter: nn.Module, at: Optional[str]) -> Optional[str]:
    """Where the "+" adds its level: ``at`` if given; for SRVGGNetCompact (``Compact``) the activation half-way
    through ``body`` (``body.17`` of 35 modules for realesr-animevideov3); otherwise ``None`` (auto+'s table).

    auto+'s table puts a Compact model's embedding on the last activation before the output conv; there a
    per-channel constant can only shift each pixel-shuffle phase by a constant (a fixed 4x4 pattern), never
    change detail, so half-way is used: eight conv+PReLU layers after it turn the level into image content
    (docs/experiments/real.md, "Where the level goes in").
    """
    if at is not None:
        return at
    if getattr(adapter, "architecture", None) == "Compact":
        n_conv = (len(adapter.net.body) - 3) // 2          # body: conv, act, n x (conv, act), conv
        return f"body.{1 + 2 * int(round(n_conv * INJECT_FRACTION))}"
    return None


def build_models(cfg: RealConfig) -> tuple[nn.Module, nn.Module, nn.Module, dict]:
    """``(released, baseline, plus, info)``, each wrapped in :class:`AtGTSize`; ``baseline`` and ``plus`` hold
    the same initial weights (the released ones; the "+" embedding at zero)."""
    import adapters

    path = resolve_checkpoint(cfg.checkpoint)
    released = adapters.create("auto", checkpoint=str(path))
    baseline = adapters.create("auto", checkpoint=str(path))
    at = inject_point(released, cfg.inject_at)
    plus = adapters.create("auto+", checkpoint=str(path), **({"condition_at": at} if at else {}))
    for m in (released, baseline, plus):
        m.requires_grad_(False)
    from iqprior.file_hash import sha256_of

    info = {"checkpoint": str(cfg.checkpoint), "file": path.name, "sha256": sha256_of(path) if path.is_file() else None,
            "architecture": released.architecture, "scale": released.scale,
            "inject_at": plus.options.get("condition_at"), "embedding_shape": plus.options.get("condition_shape"),
            "parameters": sum(p.numel() for p in released.net.parameters())}
    return AtGTSize(released).eval(), AtGTSize(baseline), AtGTSize(plus), info


def param_groups(model: AtGTSize, cfg: RealConfig) -> list[dict]:
    """Adam groups for fine-tuning every weight: the network at ``cfg.lr``, a "+" embedding at ``embedding_lr``."""
    extra = list(model.adapter.embedding_parameters()) if getattr(model.adapter, "is_conditioned", False) else []
    ids = {id(p) for p in extra}
    net = [p for p in model.parameters() if id(p) not in ids]
    for p in net + extra:
        p.requires_grad_(True)
    groups = [{"params": net, "lr": cfg.lr}]
    if extra:
        groups.append({"params": extra, "lr": cfg.embedding_lr})
    return groups
