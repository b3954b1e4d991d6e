"""Fine-tune any "+" adapter on score-labelled data (IQPFR, arXiv 2503.09294, §3.3 and App. 6.2).

The "+" variant of a model adds a zero-initialised level embedding to one of
its features; fine-tuning trains that embedding (and, with ``train_base``,
the model's own trainable parts) with the model's own objective
(:meth:`adapters.Adapter.finetune_losses`, e.g. CodeFormer's stage-II code
cross-entropy + feature L2), conditioned on the GT image's quality level.

Data: without ``lq`` the LQ inputs are synthesised on the fly by the paper's
Eq. 16 degradation (:class:`iqprior.data.ScoredImageDataset`); with ``lq``
fixed pairs are used (:class:`iqprior.data.PairedImageDataset`, e.g.
underwater raw/reference). Scores come from an ``iqprior score`` manifest.

Runs on one device or under ``torchrun`` (DDP, each rank its share of every
epoch). Checkpoints (``out/checkpoints/step_XXXXXX``: safetensors weights +
optimizer/RNG training state, written atomically) make ``resume`` continue
where a run stopped; at the end the adapter is saved with ``save_pretrained``
to ``out/final`` (load it with ``adapters.create(name, checkpoint=out/"final")``).
"""
from __future__ import annotations

import csv
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..config import ConfigMixin

__all__ = ["FinetuneConfig", "finetune", "EpochSampler", "LossModule"]


@dataclass(frozen=True)
class FinetuneConfig(ConfigMixin):
    """Options of :func:`finetune` (the ``iqprior finetune`` flags)."""

    model: str
    data: str
    out: str
    checkpoint: Optional[str] = None
    scores: Optional[str] = None
    lq: Optional[str] = None
    train_base: bool = False
    steps: int = 1000
    batch_size: int = 4
    lr: float = 1e-4                      # CodeFormer stage II: Adam, lr 1e-4, betas (0.9, 0.99)
    betas: tuple[float, float] = (0.9, 0.99)
    size: Optional[int] = None            # default: the model's native size (None for image models with --lq)
    save_every: int = 500
    log_every: int = 10
    num_workers: int = 2
    seed: int = 0
    device: Optional[str] = None
    resume: bool = False
    default_level: Optional[int] = None
    grad_clip: Optional[float] = None
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    config_name = "finetune"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "save_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


class EpochSampler(Sampler[int]):
    """Deterministic shuffled indices for (seed, epoch), this rank's share, last partial batch dropped.

    ``start`` skips the first indices of the epoch (resume mid-epoch).
    """

    def __init__(self, n: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0):
        self.n, self.batch_size, self.rank, self.world_size, self.seed = n, batch_size, rank, world_size, seed
        self.per_rank = (n // world_size) // batch_size * batch_size
        if self.per_rank == 0:
            raise ValueError(f"{n} training images are too few for batch size {batch_size} on {world_size} "
                             f"process(es); lower --batch-size")
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.per_rank // self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start_batch) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        mine = perm[self.rank::self.world_size][: self.per_rank]
        return iter(mine[self.start:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start


class LossModule(nn.Module):
    """``forward(lq, gt, level) -> {name: loss}`` around an adapter's ``finetune_losses`` (what DDP wraps)."""

    def __init__(self, adapter: nn.Module):
        super().__init__()
        self.adapter = adapter

    def forward(self, lq: torch.Tensor, gt: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.adapter.finetune_losses(lq, gt, level)


def build_dataset(cfg: FinetuneConfig, model) -> Any:
    from ..data import PairedImageDataset, ScoredImageDataset

    native = model.native_size
    if cfg.lq:
        size = cfg.size if cfg.size is not None else (native if model.task == "face" else None)
        return PairedImageDataset(cfg.lq, cfg.data, scores=cfg.scores, size=size, default_level=cfg.default_level)
    size = cfg.size if cfg.size is not None else (native or 512)
    return ScoredImageDataset(cfg.data, scores=cfg.scores, size=size, degrade=True, seed=cfg.seed,
                              default_level=cfg.default_level)


def _log_row(path: Path, row: dict[str, Any]) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _with_finetune_files(cfg: FinetuneConfig) -> dict[str, Any]:
    """``cfg.options`` plus the official files the adapter's fine-tune should use, when they are on disk."""
    import adapters

    from .. import weights

    options = dict(cfg.options)
    for option, name in adapters.finetune_weights(cfg.model).items():
        if options.get(option) is not None:
            continue
        path = weights.find(name)
        if path is None and cfg.checkpoint == "official":
            path = weights.resolve(name)
        if path is not None:
            options[option] = str(path)
        else:
            warnings.warn(f"{name} is not on disk, so {cfg.model} is fine-tuned without {option}: see the "
                          f"adapter's docstring for what it falls back to (`iqprior weights download {name}` "
                          f"or --option {option}=PATH)", stacklevel=2)
    return options


def finetune(cfg: FinetuneConfig) -> Path:
    """Run the fine-tune described by ``cfg``; returns ``out/final`` (on every rank)."""
    import adapters

    from ..distributed import barrier, default_device, init_distributed
    from .checkpoint import resume, save_checkpoint

    dist = init_distributed(cfg.device)
    device = torch.device(cfg.device) if cfg.device and not dist.enabled else default_device(dist)
    if cfg.device and dist.enabled and torch.device(cfg.device).type == "cpu":
        device = torch.device("cpu")
    torch.manual_seed(cfg.seed)  # the same (random-init) model on every rank
    model = adapters.create(cfg.model, checkpoint=cfg.checkpoint, **_with_finetune_files(cfg))
    torch.manual_seed(cfg.seed + dist.rank)
    if not model.is_conditioned and not cfg.train_base:
        raise ValueError(f"{cfg.model!r} has no level embedding: fine-tune its '+' variant "
                         f"(e.g. {cfg.model}+) or pass --train-base")
    model.to(device)
    params = model.prepare_finetune(cfg.train_base)  # frozen parts stay in eval(): BN statistics do not move
    loss_module: nn.Module = LossModule(model)
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP
        loss_module = DDP(loss_module, device_ids=[device.index] if device.type == "cuda" else None,
                          find_unused_parameters=cfg.train_base)
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)

    dataset = build_dataset(cfg, model)
    sampler = EpochSampler(len(dataset), cfg.batch_size, dist.rank, dist.world_size, cfg.seed)
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    step = 0
    if cfg.resume:
        found = resume(ckpt_dir, model, {"optimizer": optimizer},
                       log=lambda line: print(line, file=sys.stderr) if dist.is_main else None)
        if found is not None:
            last, state = found
            step = int(state["step"])
            if dist.is_main:
                print(f"resuming from {last} (step {step})")
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        import json

        from ..io import atomic_write_text
        atomic_write_text(out / "finetune_config.json", json.dumps(_jsonable(asdict(cfg)), indent=2))

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"finetune {cfg.model}", unit="step",
               disable=not (cfg.progress and dist.is_main))
    per_epoch = sampler.batches_per_epoch
    t0 = time.time()
    while step < cfg.steps:
        epoch, skip = divmod(step, per_epoch)
        sampler.set_epoch(epoch, skip)
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                            drop_last=True, pin_memory=device.type == "cuda",
                            persistent_workers=False)
        for batch in loader:
            lq = batch["lq"].to(device, non_blocking=True)
            gt = batch["gt"].to(device, non_blocking=True)
            level = batch["level"].to(device)
            losses = loss_module(lq, gt, level)
            total = sum(losses.values())
            losses = {k: v.detach() for k, v in losses.items()}
            if not torch.isfinite(total):
                raise FloatingPointError(f"non-finite loss at step {step}: "
                                         f"{ {k: float(v) for k, v in losses.items()} }")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            bar.update(1)
            if dist.is_main and (step % cfg.log_every == 0 or step == cfg.steps):
                row = {"step": step, "epoch": epoch, **{k: f"{float(v):.6g}" for k, v in losses.items()},
                       "total": f"{float(total.detach()):.6g}", "lr": optimizer.param_groups[0]["lr"],
                       "seconds": f"{time.time() - t0:.1f}"}
                _log_row(out / "log.csv", row)
                bar.set_postfix({k: f"{float(v):.4f}" for k, v in losses.items()})
            if step % cfg.save_every == 0 or step == cfg.steps:
                if dist.is_main:
                    save_checkpoint(ckpt_dir, model, step, {"optimizer": optimizer},
                                    extra={"epoch": epoch, "model": cfg.model})
                barrier()
            if step >= cfg.steps:
                break
    bar.close()
    final = out / "final"
    if dist.is_main:
        model.eval().save_pretrained(final)
    barrier()
    return final


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
            if isinstance(v, (str, int, float, bool, type(None), list, tuple, dict)) and not
            (isinstance(v, float) and math.isnan(v))}
