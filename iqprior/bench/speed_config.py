"""Settings and result rows of ``iqprior bench speed`` (:mod:`.speed`, reported by :mod:`.speed_report`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import torch

from iqprior.levels import DEFAULT_LEVEL


@dataclass(frozen=True)
class SpeedConfig:
    models: tuple[str, ...]
    sizes: tuple[int, ...] = (512,)
    batch_sizes: tuple[int, ...] = (1, 4, 8)
    device: str = "cpu"
    amp: bool = False               # legacy switch: precision bf16 on CPU, fp16 on CUDA
    warmup: int = 1
    iters: int = 3
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    score: int = DEFAULT_LEVEL
    out: Optional[Path] = None
    precision: str = "fp32"         # autocast of the timed (fast) model: fp32, bf16, fp16
    exact: bool = False             # time the exact path only (no fast path, no comparison)
    compare_exact: bool = True      # also time an exact float32 copy, interleaved, and compare outputs
    compile: bool = False           # torch.compile the timed model (compile time goes into the warm-up)

    @property
    def effective_precision(self) -> str:
        if self.amp and self.precision == "fp32":
            return "fp16" if torch.device(self.device).type == "cuda" else "bf16"
        return self.precision


@dataclass
class SpeedRow:
    model: str
    size: int
    batch: int
    latency_ms: Optional[float] = None        # median time of one forward call on the batch
    images_per_s: Optional[float] = None
    peak_mem_mb: Optional[float] = None
    ratio_to_base: Optional[float] = None     # "+" rows: latency / base latency
    params_m: Optional[float] = None
    error: str = ""
    path: str = ""                            # "exact" or the fast path's measures
    precision: str = "fp32"
    latency_min_ms: Optional[float] = None
    latency_max_ms: Optional[float] = None
    exact_latency_ms: Optional[float] = None  # median of the exact float32 copy, interleaved
    speedup_vs_exact: Optional[float] = None  # exact latency / this latency
    max_abs_vs_exact: Optional[float] = None  # fast float32 output vs exact float32 output
    max_abs_vs_fp32: Optional[float] = None   # reduced-precision output vs float32 (same path)
    within_tolerance: Optional[bool] = None   # max_abs_vs_exact <= TOLERANCE * max(1, max |exact|)


@dataclass
class SpeedResult:
    rows: list[SpeedRow]
    files: dict[str, Path]
