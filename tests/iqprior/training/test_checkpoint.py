import random

import numpy as np
import torch
from torch import nn

from iqprior.distributed import DistInfo, shard
from iqprior.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def step(model, opt):
    x = torch.randn(4, 3)
    loss = model(x).square().mean() + float(np.random.rand()) * 0 + random.random() * 0
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def test_resume_is_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        step(model, opt)
    save_checkpoint(tmp_path, model, 3, {"optimizer": opt})
    expected = [step(model, opt) for _ in range(2)] + [torch.rand(1).item(), random.random(), np.random.rand()]

    model2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.1)
    ckpt = latest_checkpoint(tmp_path)
    state = load_checkpoint(ckpt, model2, {"optimizer": opt2})
    assert state["step"] == 3
    got = [step(model2, opt2) for _ in range(2)] + [torch.rand(1).item(), random.random(), np.random.rand()]
    assert got == expected


def test_incomplete_checkpoint_is_ignored(tmp_path):
    model = nn.Linear(2, 2)
    save_checkpoint(tmp_path, model, 1)
    p = save_checkpoint(tmp_path, model, 2)
    (p / "DONE").unlink()  # crash before completion
    assert latest_checkpoint(tmp_path).name == "step_000001"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_shard():
    items = list(range(7))
    assert shard(items, DistInfo(0, 2)) == [0, 2, 4, 6]
    assert shard(items, DistInfo(1, 2)) == [1, 3, 5]
    assert shard(items) == items
