"""One test per behaviour of a private torch API that iqprior relies on (iqprior/torch_compat.py).

When one of these fails on a new torch, the wrapper in torch_compat.py is what to fix.
"""
from __future__ import annotations

import io
import pickletools
import warnings
import zipfile

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from iqprior import torch_compat


class _Probe(torch.autograd.Function):
    """Identity whose backward calls ``probe()`` and records what it returns."""

    @staticmethod
    def forward(ctx, x, probe, seen):  # type: ignore[override]
        ctx.probe, ctx.seen = probe, seen
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        ctx.seen.append(ctx.probe())
        return g, None, None


def test_graph_task_id_is_minus_one_outside_and_one_id_per_backward_inside():
    assert torch_compat.graph_task_id() == -1
    x = torch.ones(2, requires_grad=True)
    seen: list[int] = []
    y = _Probe.apply(_Probe.apply(x, torch_compat.graph_task_id, seen), torch_compat.graph_task_id, seen)
    y.sum().backward()
    _Probe.apply(x, torch_compat.graph_task_id, seen).sum().backward()
    assert len(seen) == 3 and all(g >= 0 for g in seen)
    assert seen[0] == seen[1] != seen[2]  # the same backward call, then another one
    assert torch_compat.graph_task_id() == -1


def test_saved_tensors_hooks_active_inside_hooks_and_non_reentrant_checkpoint_only():
    assert torch_compat.saved_tensors_hooks_active() is False
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        assert torch_compat.saved_tensors_hooks_active() is True
    assert torch_compat.saved_tensors_hooks_active() is False
    seen = []

    def region(x):
        seen.append(torch_compat.saved_tensors_hooks_active())
        return x * 2

    x = torch.ones(2, requires_grad=True)
    checkpoint(region, x, use_reentrant=False).sum().backward()
    assert seen[0] is True  # the forward run records through saved-tensor hooks


def test_queue_engine_callback_runs_once_after_the_backward_finishes():
    order: list[str] = []

    def probe():
        torch_compat.queue_engine_callback(lambda: order.append("callback"))
        return "backward"

    x = torch.ones(2, requires_grad=True)
    y = _Probe.apply(x, probe, order) * 3
    y.sum().backward()
    assert order == ["backward", "callback"]
    assert torch.equal(x.grad, torch.full((2,), 3.0))


def test_module_slots_are_the_live_dicts_named_parameters_and_state_dict_read():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    net.register_buffer("scratch", torch.zeros(1), persistent=False)
    mirror = nn.Module()
    own, theirs = torch_compat.module_slots(mirror), torch_compat.module_slots(net)
    assert theirs.non_persistent == {"scratch"} and set(theirs.modules) == {"0", "1"}
    own.modules.update(theirs.modules)
    own.parameters.update(theirs.parameters)
    own.buffers.update(theirs.buffers)
    own.non_persistent.update(theirs.non_persistent)
    own.modules["extra"] = nn.Linear(2, 2)
    assert getattr(mirror, "0") is net[0]
    assert set(mirror.state_dict()) == set(net.state_dict()) | {"extra.weight", "extra.bias"}
    assert "scratch" in dict(mirror.named_buffers()) and "scratch" not in mirror.state_dict()
    assert [p for n, p in mirror.named_parameters() if not n.startswith("extra")] == list(net.parameters())


def test_data_parallel_replica_has_its_own_slots_and_the_same_hooks():
    net = nn.Sequential(nn.Linear(2, 2))
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(m))
    rep = torch_compat.data_parallel_replica(net)
    assert torch_compat.is_replica(rep) and not torch_compat.is_replica(net)
    torch_compat.module_slots(rep).modules["0"] = nn.Identity()
    assert isinstance(net[0], nn.Linear)  # replacing the replica's child leaves the original alone
    x = torch.randn(1, 2)
    assert torch.equal(rep(x), x)
    assert calls == [rep]


def test_cpu_replicas_are_copies_whose_gradients_reach_the_original():
    net = nn.Linear(3, 2)
    reps = torch_compat.cpu_replicas(net, 2)
    assert len(reps) == 2 and all(torch_compat.is_replica(r) for r in reps)
    assert reps[0] is not net and reps[0].weight is not net.weight and not reps[0].weight.is_leaf
    x = torch.randn(4, 3)
    assert torch.equal(reps[1](x), net(x))
    sum(r(x).sum() for r in reps).backward()
    assert torch.allclose(net.weight.grad, 2 * x.sum(0).expand(2, 3))


def test_rebuild_tensor_is_the_global_torch_save_pickles_tensors_with():
    buf = io.BytesIO()
    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    globals_ = [arg for op, arg, _ in pickletools.genops(data) if op.name in ("GLOBAL", "STACK_GLOBAL")]
    strings = [arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    module, name = torch_compat.REBUILD_TENSOR
    assert f"{module} {name}" in globals_ or (module in strings and name in strings)
    raw = torch.arange(6.0).untyped_storage()
    with warnings.catch_warnings():  # a TypedStorage, as iqprior.torchscript's unpickler hands it
        warnings.simplefilter("ignore", UserWarning)
        storage = torch.storage.TypedStorage(wrap_storage=raw, dtype=torch.float32, _internal=True)
    t = torch_compat.tensor_rebuilder()(storage, 0, (2, 3), (3, 1), False, {})
    assert torch.equal(t, torch.arange(6.0).reshape(2, 3))

