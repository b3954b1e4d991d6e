"""IQPFR training: each stage learns, exact resume, stage chaining, configs, CLI, 2-process DDP (gloo)."""
from __future__ import annotations

import json
import os
import socket

import pytest
import torch
from torch.utils.data import Dataset

import adapters
from iqprior.io import write_image
from iqprior.training.config import load_config
from iqprior.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


FAST = ["train.log_every=0", "train.val_every=0", "train.save_every=0", "data.num_workers=0"]


class FixedBatch(Dataset):
    """Two fixed items: every step sees the same batch."""

    def __init__(self, n: int = 2):
        g = torch.Generator().manual_seed(0)
        self.gt = torch.rand(n, 3, 64, 64, generator=g)
        self.lq = (self.gt + 0.2 * torch.randn(n, 3, 64, 64, generator=g)).clamp(0, 1)

    def __len__(self):
        return len(self.gt)

    def __getitem__(self, i):
        return {"lq": self.lq[i], "gt": self.gt[i], "score": torch.tensor(0.95 if i == 0 else 0.5),
                "level": torch.tensor(9 if i == 0 else 5), "hq_plus": torch.tensor(i == 0), "path": str(i)}


def _quality(x):  # a differentiable stand-in for -IQA: prefers smooth, mid-grey images
    return ((x - 0.5) ** 2).mean() + (x[..., 1:] - x[..., :-1]).abs().mean()


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_loss_decreases_on_a_fixed_batch(tmp_path, stage):
    cfg = load_config("tiny", FAST + ["train.ema_decay=0", "train.disc_start=1000"], stage=stage)
    tr = Trainer(cfg, tmp_path, dataset=FixedBatch(), quality_fn=_quality, log=lambda s: None)
    hist = tr.run(steps=8)
    key = "l1" if stage == 1 else "total"  # Stage I: the codebook term first grows with the encoder's output
    first, last = hist[0][key], min(h[key] for h in hist[-3:])
    assert last < first, [h[key] for h in hist]
    if stage == 3:
        assert "quality" in hist[0]


@pytest.fixture
def faces(tmp_path):
    root = tmp_path / "faces"
    g = torch.Generator().manual_seed(0)
    recs = []
    for i in range(4):
        p = root / f"{i}.png"
        write_image(p, torch.rand(3, 64, 64, generator=g))
        recs.append({"path": str(p), "raw": {}, "score": [0.95, 0.3, 0.92, 0.6][i], "level": None, "error": None})
    man = tmp_path / "scores.jsonl"
    man.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root, man


@pytest.mark.parametrize("stage", [1, 2])
def test_resume_is_exact(tmp_path, faces, stage):
    root, man = faces
    over = [f"data.root={root}", f"data.scores={man}", "train.save_every=2", "train.disc_start=1",
            "train.log_every=0", "train.val_every=0", "data.num_workers=0", "train.batch_size=2"]
    full = Trainer(load_config("tiny", over, stage=stage), tmp_path / "a", log=lambda s: None).run(steps=4)
    Trainer(load_config("tiny", over, stage=stage), tmp_path / "b", log=lambda s: None).run(steps=2)
    resumed = Trainer(load_config("tiny", over, stage=stage), tmp_path / "b", resume=True, log=lambda s: None)
    assert resumed.step == 2
    rest = resumed.run(steps=4)
    assert [h["total"] for h in rest] == [h["total"] for h in full[2:]]
    if stage == 1:
        assert "gan" in rest[0] and "disc" in rest[0]


def test_stage_chaining_and_outputs(tmp_path, faces):
    root, man = faces
    over = [f"data.root={root}", f"data.scores={man}", "data.num_workers=0", "train.steps=2", "train.save_every=2",
            "train.val_every=2", "train.log_every=1"]
    s1 = Trainer(load_config("tiny", over, stage=1), tmp_path / "s1", log=lambda s: None)
    s1.run()
    s2 = Trainer(load_config("tiny", over, stage=2), tmp_path / "s2", init=tmp_path / "s1", log=lambda s: None)
    assert torch.equal(s2.stage.net.generator.blocks[0].weight, s1.ema.generator.blocks[0].weight)
    assert torch.equal(s2.stage.hq_encoder.blocks[0].weight, s1.ema.encoder.blocks[0].weight)
    assert not s2.stage.net.quantize.embedding.weight.requires_grad  # frozen codebooks and decoder
    assert not s2.stage.net.generator.blocks[0].weight.requires_grad
    before = s2.stage.net.generator.blocks[0].weight.clone()
    s2.run()
    assert torch.equal(s2.stage.net.generator.blocks[0].weight, before)
    s3 = Trainer(load_config("tiny", over, stage=3), tmp_path / "s3", init=tmp_path / "s2", quality_fn=_quality,
                 log=lambda s: None)
    assert torch.equal(s3.stage.net.ft_layers[0].linear1.weight, s2.ema.ft_layers[0].linear1.weight)
    s3.run()
    for d in ("s1", "s2", "s3"):
        assert (tmp_path / d / "checkpoints" / "step_000002" / "DONE").is_file()
        assert (tmp_path / d / "val" / "step_000002.png").is_file()
        assert (tmp_path / d / "metrics.csv").read_text().count("\n") == 3  # header + 2 steps
    model = adapters.create("iqpfr", checkpoint=tmp_path / "s3" / "adapter")
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="does not fit"):
        Trainer(load_config("tiny", over + ["model.emb_dim=8"], stage=2), tmp_path / "x", init=tmp_path / "s1")


def test_config_rejects_unknown_keys_and_cli_runs(tmp_path, faces):
    with pytest.raises(ValueError, match="unknown config section 'train' option"):
        load_config("tiny", ["train.learning_rate=1"])
    with pytest.raises(ValueError, match="unknown IQPFR"):
        load_config("tiny", ["model.layers=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: 1}\n")
    with pytest.raises(ValueError, match="unknown config section"):
        load_config(bad)
    from iqprior.cli import main

    root, man = faces
    rc = main(["train", "--stage", "1", "--config", "tiny", "--data", str(root), "--scores", str(man),
               "--steps", "1", "--out", str(tmp_path / "cli"), "--set", "data.num_workers=0"])
    assert rc == 0 and (tmp_path / "cli" / "checkpoints" / "step_000001").is_dir()


def _ddp_worker(rank, world, port, root, man, out, q):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from iqprior.distributed import cleanup

    cfg = load_config("tiny", [f"data.root={root}", f"data.scores={man}", "data.num_workers=0", "train.steps=2",
                               "train.save_every=2", "train.val_every=0", "train.log_every=0",
                               "train.device=cpu"], stage=2)
    tr = Trainer(cfg, out, log=lambda s: None)
    seen = list(tr.sampler)
    tr.run()
    w = tr.stage.net.ft_layers[0].linear1.weight.detach().clone()
    gathered = [torch.zeros_like(w) for _ in range(world)]
    dist.all_gather(gathered, w)
    q.put((rank, seen, all(torch.equal(gathered[0], g) for g in gathered)))
    cleanup()


def test_ddp_two_processes_gloo(tmp_path, faces):
    root, man = faces
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = torch.multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(root), str(man), str(tmp_path / "ddp"), q))
             for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(q.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (r0, seen0, same0), (r1, seen1, same1) = results
    assert same0 and same1                      # DDP kept the replicas identical
    assert not set(seen0) & set(seen1)          # per-rank shards
    assert (tmp_path / "ddp" / "checkpoints" / "step_000002" / "DONE").is_file()
