"""Resume validates the whole newest state before changing anything, and falls back on any failure."""
import io
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from iqprior.checkpoint import CheckpointError
from iqprior.training.checkpoint import STATE_FILE, load_checkpoint, resume, save_checkpoint
from iqprior.training.trainer import Trainer


def _setup(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [5, 10], 0.5)
    return model, {"opt_g": opt, "sched": sched}


def _train(model, objs, n=2):
    for _ in range(n):
        loss = model(torch.randn(4, 3)).square().mean()
        objs["opt_g"].zero_grad()
        loss.backward()
        objs["opt_g"].step()
        objs["sched"].step()


def _edit_state(ckpt, edit):
    state = torch.load(ckpt / STATE_FILE, weights_only=True)
    edit(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    (ckpt / STATE_FILE).write_bytes(buf.getvalue())


BREAKS = {
    "optimizer group size": lambda s: s["opt_g"]["param_groups"][0].update(params=[0]),
    "optimizer state shape": lambda s: s["opt_g"]["state"][0].update(exp_avg=torch.zeros(7)),
    "optimizer lr type": lambda s: s["opt_g"]["param_groups"][0].update(lr="fast"),
    "scheduler extra key": lambda s: s["sched"].update(get_lr="x", optimizer=None),
    "scheduler wrong type": lambda s: s["sched"].update(last_epoch="x"),
    "rng": lambda s: s["rng"].update(torch=torch.zeros(3, dtype=torch.uint8)),
    "python rng": lambda s: s["rng"].update(python=[3, torch.zeros(5, dtype=torch.int64), None]),
    "step": lambda s: s.update(step=-4),
    "optimizer missing": lambda s: s.pop("opt_g"),
    # issue 33, item 9: contents, not only shapes
    "optimizer state without exp_avg": lambda s: s["opt_g"]["state"][0].pop("exp_avg"),
    "optimizer state with a string": lambda s: s["opt_g"]["state"][0].update(exp_avg="x"),
    "optimizer lr NaN": lambda s: s["opt_g"]["param_groups"][0].update(lr=float("nan")),
    "optimizer lr negative": lambda s: s["opt_g"]["param_groups"][0].update(lr=-1.0),
    "optimizer betas Inf": lambda s: s["opt_g"]["param_groups"][0].update(betas=(0.9, float("inf"))),
    "optimizer step NaN": lambda s: s["opt_g"]["state"][0].update(step=torch.tensor(float("nan"))),
    "optimizer exp_avg NaN": lambda s: s["opt_g"]["state"][1]["exp_avg"].fill_(float("nan")),
    "optimizer unknown state key": lambda s: s["opt_g"]["state"][0].update(momentum_buffer=torch.zeros(2, 3)),
}


@pytest.mark.parametrize("broken", list(BREAKS))
def test_broken_newest_state_falls_back_without_changing_anything_first(tmp_path, broken):
    model, objs = _setup()
    _train(model, objs)
    save_checkpoint(tmp_path, model, 2, objs)
    good_weights = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, objs)
    newest = save_checkpoint(tmp_path, model, 4, objs)
    _edit_state(newest, BREAKS[broken])

    model2, objs2 = _setup(seed=1)
    before = {k: v.clone() for k, v in model2.state_dict().items()}
    with pytest.raises(CheckpointError):
        load_checkpoint(newest, model2, objs2)
    assert all(torch.equal(before[k], v) for k, v in model2.state_dict().items()), "the model was changed"
    lines = []
    path, state = resume(tmp_path, model2, objs2, log=lines.append)
    assert path.name == "step_000002" and state["step"] == 2
    assert len(lines) == 1 and "step_000004" in lines[0] and "\n" not in lines[0]
    assert all(torch.equal(good_weights[k], v) for k, v in model2.state_dict().items())
    assert objs2["sched"].last_epoch == 2


def test_scheduler_state_never_sets_unknown_attributes(tmp_path):
    model, objs = _setup()
    ckpt = save_checkpoint(tmp_path, model, 1, objs)
    _edit_state(ckpt, lambda s: s["sched"].update(step="not callable"))
    model2, objs2 = _setup()
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt, model2, objs2)
    assert callable(objs2["sched"].step)


def test_resume_round_trip_still_exact(tmp_path):
    model, objs = _setup()
    _train(model, objs)
    save_checkpoint(tmp_path, model, 2, objs)
    expected = [torch.rand(1).item(), random.random(), float(np.random.rand())]
    model2, objs2 = _setup(seed=3)
    resume(tmp_path, model2, objs2, log=lambda s: None)
    assert [torch.rand(1).item(), random.random(), float(np.random.rand())] == expected
    assert objs2["sched"].last_epoch == 2 and objs2["opt_g"].state_dict()["state"][0]["exp_avg"].shape == (2, 3)


def test_prune_compares_steps_as_numbers_and_ignores_incomplete(tmp_path):
    model = nn.Linear(2, 2)
    ck = tmp_path / "checkpoints"
    for s in (999_998, 999_999, 1_000_000):
        save_checkpoint(ck, model, s)
    incomplete = save_checkpoint(ck, model, 1_000_001)
    (incomplete / "DONE").unlink()
    trainer = Trainer.__new__(Trainer)
    trainer.t, trainer.out = SimpleNamespace(keep_last=2), tmp_path
    trainer._prune()
    left = sorted(p.name for p in ck.iterdir())
    assert "step_1000000" in left and "step_999999" in left and "step_999998" not in left, left
