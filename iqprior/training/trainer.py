"""Training loop of the IQPFR stages: data, optimisers, AMP, EMA, DDP, logs, checkpoints, resume.

Output directory layout::

    out/config.yaml              the resolved configuration
    out/metrics.csv              step, losses, learning rate, seconds per step (rank 0)
    out/val/step_000500.png      validation rows: LQ (or GT) | output | GT
    out/checkpoints/step_*/      model.safetensors + training_state.pt (+ DONE)
    out/adapter/                 Stages II–III: `adapters.create("iqpfr", checkpoint=out/adapter)`

``resume=True`` continues from the newest complete checkpoint bit-exactly:
weights (including the EMA copy), optimiser/scheduler/scaler states and RNG
come back, and the data order and degradations are functions of ``(seed,
epoch, index)``, so the next batches are the ones an uninterrupted run sees.
``init`` loads a previous stage's run directory (its EMA weights when present)
into this stage's network. Under ``torchrun`` each rank trains on its shard
(:class:`torch.utils.data.DistributedSampler`) inside DDP.
"""
from __future__ import annotations

import copy
import csv
import math
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..distributed import barrier, default_device, init_distributed
from .checkpoint import MODEL_FILE, latest_checkpoint, prune_checkpoints, resume, save_checkpoint
from .config import TrainConfig
from .stages import build_stage

LOSS_KEYS = {1: ["l1", "perceptual", "codebook", "gan", "disc"], 2: ["feat", "index"], 3: ["feat", "index", "quality"]}


class ResumableSampler(DistributedSampler):
    """A :class:`DistributedSampler` (also for one process) that can skip the first ``start`` samples of an epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


@torch.no_grad()
def ema_update(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 - decay)·module`` for trained parameters; buffers copied."""
    for e, p in zip(ema.parameters(), module.parameters()):
        if p.requires_grad:
            e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), module.buffers()):
        e.copy_(b)


class Trainer:
    """Train one IQPFR stage: ``Trainer(config, out_dir, init=None, resume=False).run()``.

    ``quality_fn`` (Stage III): a loss callable ``(B, 3, H, W) in [0, 1] -> scalar`` (lower is better)
    replacing the configured ``QualityLoss``; ``dataset`` replaces the one built from ``config.data``.
    """

    def __init__(self, config: TrainConfig, out_dir: Union[str, Path], init: Optional[Union[str, Path]] = None,
                 resume: bool = False, quality_fn: Optional[Callable] = None, dataset: Optional[Dataset] = None,
                 log: Callable[[str], None] = print):
        self.cfg, self.t = config, config.train
        self.out = Path(out_dir)
        self.log = log
        self.dist = init_distributed(self.t.device)
        self.device = torch.device(self.t.device) if self.t.device else default_device(self.dist)
        self.amp = bool(self.t.amp and self.device.type == "cuda")
        torch.manual_seed(self.t.seed)  # identical initial weights on every rank
        self.stage = build_stage(config, quality_fn=quality_fn)
        if init is not None:
            self.init_from(init)
        self.ema: Optional[nn.Module] = None
        if self.t.ema_decay > 0:  # a registered submodule of the stage: checkpointed with it
            self.stage.ema = self.ema = copy.deepcopy(self.stage.net).requires_grad_(False)
        self.stage.to(self.device)
        self._build_optim()
        self._wrap_ddp()
        self.dataset = dataset if dataset is not None else self._build_dataset()
        self.sampler = ResumableSampler(self.dataset, self.dist.world_size, self.dist.rank, self.t.seed)
        if len(self.sampler) < self.t.batch_size:
            raise ValueError(f"{len(self.dataset)} images are too few for batch_size {self.t.batch_size} "
                             f"on {self.dist.world_size} process(es)")
        self.step = 0
        if resume:
            self._resume()

    # -- set-up ---------------------------------------------------------------------------
    def _build_dataset(self) -> Dataset:
        from ..data import ScoredImageDataset

        d = self.cfg.data
        if not d.root:
            raise ValueError("no training images: set data.root in the config or pass --data DIR")
        deg = d.degradation_config() if self.cfg.stage >= 2 else None
        return ScoredImageDataset(d.root, scores=d.scores, size=d.size, degrade=deg,
                                  hq_threshold=self.cfg.model.hq_threshold, seed=self.t.seed, hflip=d.hflip,
                                  default_level=d.default_level, levels=self.cfg.model.levels)

    def _build_optim(self) -> None:
        t = self.t
        params = [p for p in self.stage.net.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt_g, list(t.lr_milestones), t.lr_gamma)
        self.opt_d = None
        if self.cfg.stage == 1:
            self.opt_d = torch.optim.Adam(self.stage.disc.parameters(), lr=t.lr_d, betas=t.betas,
                                          weight_decay=t.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def _wrap_ddp(self) -> None:
        self.net, self.disc = self.stage.net, getattr(self.stage, "disc", None)
        if not self.dist.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = DDP(self.stage.net, device_ids=ids, find_unused_parameters=True)
        if self.disc is not None:
            self.disc = DDP(self.stage.disc, device_ids=ids)

    def optimizers(self) -> dict:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d, "sched": self.sched, "scaler": self.scaler}

    def init_from(self, path: Union[str, Path]) -> None:
        """Load a previous stage's weights (run dir, ``checkpoints`` dir or ``step_*`` dir) into ``net``."""
        from safetensors.torch import load_file

        path = Path(path)
        ckpt = latest_checkpoint(path / "checkpoints") or latest_checkpoint(path)
        if ckpt is None:
            raise FileNotFoundError(f"{path} holds no complete checkpoint (step_*/DONE) to initialise from")
        state = load_file(str(ckpt / MODEL_FILE))
        prefix = "ema." if any(k.startswith("ema.") for k in state) else "net."
        net_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        own = self.stage.net.state_dict()
        unexpected = sorted(set(net_state) - set(own))
        missing = sorted(k for k in set(own) - set(net_state) if not _is_new_in_stage2(k))
        wrong = [k for k in net_state if k in own and net_state[k].shape != own[k].shape]
        if unexpected or missing or wrong:
            raise ValueError(f"{ckpt} does not fit this stage's network: missing {missing[:4]}, "
                             f"unexpected {unexpected[:4]}, wrong shape {wrong[:4]} (same model config?)")
        self.stage.net.load_state_dict(net_state, strict=False)
        if hasattr(self.stage, "hq_encoder"):
            teacher = {k[len("hq_encoder."):]: v for k, v in state.items() if k.startswith("hq_encoder.")}
            if teacher:
                self.stage.hq_encoder.load_state_dict(teacher)
            else:
                self.stage.sync_teacher()
        self.log(f"initialised {type(self.stage.net).__name__} from {ckpt} ({prefix[:-1]} weights)")

    def _resume(self) -> None:
        found = resume(self.out / "checkpoints", self.stage,
                       {k: v for k, v in self.optimizers().items() if v is not None}, log=self.log)
        if found is None:
            self.log(f"no checkpoint in {self.out / 'checkpoints'}; starting from step 0")
            return
        ckpt, state = found
        self.step = int(state["step"])
        self.log(f"resumed from {ckpt} at step {self.step}")

    # -- loop -------------------------------------------------------------------------------
    def batches(self) -> Iterator[dict]:
        """Batches from ``self.step`` on; epoch and offset follow from the step, so resume is exact."""
        per_epoch = self.sampler.num_samples // self.t.batch_size
        epoch, offset = divmod(self.step, per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            self.sampler.start = offset * self.t.batch_size
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            loader = DataLoader(self.dataset, batch_size=self.t.batch_size, sampler=self.sampler,
                                num_workers=self.cfg.data.num_workers if self.dataset is not None else 0,
                                drop_last=True, pin_memory=self.device.type == "cuda")
            yield from loader
            epoch, offset = epoch + 1, 0

    def train_step(self, batch: dict) -> dict[str, float]:
        t, stage = self.t, self.stage
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        stage.net.train()
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            if self.cfg.stage == 1:
                losses, extra = stage.losses(batch, self.step, net=self.net, disc=self.disc)
            else:
                losses, extra = stage.losses(batch, self.step, net=self.net)
            total = sum(losses.values())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self._clip(self.opt_g)
        self.scaler.step(self.opt_g)
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if self.cfg.stage == 1 and stage.gan_active(self.step):
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                d_loss = stage.disc_loss(extra["gt"], extra["rec"], disc=self.disc)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self._clip(self.opt_d)
            self.scaler.step(self.opt_d)
            logs["disc"] = float(d_loss.detach())
        self.scaler.update()
        self.sched.step()
        if self.ema is not None:
            ema_update(self.ema, stage.net, t.ema_decay)
        logs["total"] = float(total.detach())
        return logs

    def _clip(self, opt: torch.optim.Optimizer) -> None:
        if self.t.grad_clip:
            self.scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.t.grad_clip)

    def run(self, steps: Optional[int] = None) -> list[dict[str, float]]:
        """Train until ``steps`` (default ``train.steps``); return the logged losses of each step run."""
        t, main = self.t, self.dist.is_main
        end = t.steps if steps is None else steps
        if main:
            self._write_config()
        history: list[dict[str, float]] = []
        if self.step >= end:
            return history
        data = self.batches()
        while self.step < end:
            tic = time.perf_counter()
            logs = self.train_step(next(data))
            self.step += 1
            logs["step"], logs["lr"], logs["sec"] = self.step, self.opt_g.param_groups[0]["lr"], time.perf_counter() - tic
            if not all(math.isfinite(v) for v in logs.values()):
                raise FloatingPointError(f"non-finite loss at step {self.step}: {logs}")
            history.append(logs)
            if main and t.log_every and (self.step % t.log_every == 0 or self.step == end):
                self._log_metrics(logs)
            if main and t.val_every and (self.step % t.val_every == 0 or self.step == end):
                self.validate()
            if t.save_every and (self.step % t.save_every == 0 or self.step == end):
                self.save()
        if main and self.cfg.stage >= 2:
            self.export_adapter(self.out / "adapter")
        barrier()
        return history

    # -- outputs ----------------------------------------------------------------------------
    def save(self) -> Optional[Path]:
        path = None
        if self.dist.is_main:
            path = save_checkpoint(self.out / "checkpoints", self.stage, self.step,
                                   {k: v for k, v in self.optimizers().items() if v is not None},
                                   extra={"stage": self.cfg.stage})
            self._prune()
        barrier()
        return path

    def _prune(self) -> None:
        # at least two complete ones: an unreadable newest checkpoint leaves the previous one to resume from
        prune_checkpoints(self.out / "checkpoints", self.t.keep_last)

    def _write_config(self) -> None:
        import yaml

        from ..io import atomic_write_text

        atomic_write_text(self.out / "config.yaml", yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))

    def _log_metrics(self, logs: dict[str, float]) -> None:
        path = self.out / "metrics.csv"
        cols = ["step", *LOSS_KEYS[self.cfg.stage], "total", "lr", "sec"]
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(cols)
            w.writerow([("" if logs.get(c) is None else f"{logs[c]:.6g}") for c in cols])
        self.log(" ".join(f"{k}={logs[k]:.4g}" for k in cols if k in logs))

    def eval_net(self) -> nn.Module:
        return self.ema if self.ema is not None else self.stage.net

    @torch.no_grad()
    def validate(self) -> Path:
        """Write ``val/step_N.png``: per validation image a row LQ (Stage I: GT) | output | GT."""
        from ..io import write_image

        items = [self._val_dataset()[i] for i in range(min(self.cfg.data.val_count, len(self._val_dataset())))]
        lq = torch.stack([it["lq"] for it in items]).to(self.device)
        gt = torch.stack([it["gt"] for it in items]).to(self.device)
        net = self.eval_net().eval()
        if self.cfg.stage == 1:
            rec, _, _ = net(gt * 2 - 1, hq_plus=torch.stack([it["hq_plus"] for it in items]).to(self.device))
            src = gt
        else:
            rec = net(lq * 2 - 1, score=self.t.val_level, latent=self.t.quality_latent).image
            src = lq
        out = (rec.float() + 1) / 2
        rows = torch.cat([torch.cat([s, o, g], dim=2) for s, o, g in zip(src, out, gt)], dim=1)
        return write_image(self.out / "val" / f"step_{self.step:06d}.png", rows.cpu())

    def _val_dataset(self) -> Dataset:
        if not hasattr(self, "_val"):
            d = self.cfg.data
            if d.val_root:
                from ..data import ScoredImageDataset

                self._val = ScoredImageDataset(d.val_root, scores=d.scores, size=d.size,
                                               degrade=d.degradation_config() if self.cfg.stage >= 2 else None,
                                               seed=self.t.seed + 1, default_level=d.default_level if d.default_level
                                               is not None else self.t.val_level)
            else:
                self._val = self.dataset
        return self._val

    def export_adapter(self, directory: Union[str, Path]) -> Path:
        """Save the (EMA) network as an ``iqpfr`` adapter directory (``config.json`` + ``model.safetensors``)."""
        from adapters.iqpfr import IQPFRAdapter

        adapter = IQPFRAdapter(copy.deepcopy(self.eval_net()).cpu())
        return adapter.save_pretrained(directory)


def _is_new_in_stage2(key: str) -> bool:
    """Keys a Stage II network has that a Stage I checkpoint lacks."""
    return key.split(".")[0] in ("position_emb", "feat_emb", "ft_layers", "idx_pred_layer", "idx_pred_layer_hq",
                                 "score_embedding")
