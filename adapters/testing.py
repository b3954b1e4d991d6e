"""The adapter contract, as one call: ``adapters.testing.check_adapter(name_or_model)``.

Like diffusers' ``ModelTesterMixin`` or timm's registry-wide tests: the checks
every adapter (ours, and users' own) must pass, run on a small input on the CPU.

>>> from adapters.testing import check_adapter
>>> check_adapter("codeformer+", options={"config": TINY})    # doctest: +SKIP
>>> check_adapter(MyAdapter(...))                             # raises AssertionError listing failures

Checks (:data:`CHECKS`):

- ``identity``: at init every level gives the same output, bitwise (and, for a
  registered "+" adapter, the base adapter's output with the same weights);
- ``keys``: ``state_dict()`` keys equal ``named_parameters()`` + persistent
  ``named_buffers()`` names; a "+" adapter's keys are the base's plus its
  embeddings' (so its file loads into the base with ``strict=False``);
- ``finetune``: after :meth:`Adapter.prepare_finetune` one loss
  (``finetune_losses``, else the output's mean square) reaches only the trained
  parameters, only the embedding rows of the levels in the batch, and one Adam
  step changes nothing else (BatchNorm statistics included);
- ``roundtrip``: ``save_pretrained`` then a strict load reproduces the output;
- ``mixed``: a batch with two levels equals, row by row, the batch at each level,
  and the levels give different outputs once the embedding is non-zero;
- ``threads``: two threads on one model at different levels, both inside the
  network at once, each get their own level's output;
- ``replicas``: ``DataParallel``-style replicas (:func:`cpu_replicas`) run in
  two threads each get their own level, and gradients reach the original embedding.

Random weights throughout: the checks are about plumbing, not image quality.
"""
from __future__ import annotations

import copy
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union
from unittest import mock

import torch
from torch import nn

from .base import Adapter

CHECKS = ("identity", "keys", "finetune", "roundtrip", "mixed", "threads", "replicas")

__all__ = ["check_adapter", "cpu_replicas", "ContractReport", "CHECKS"]


@dataclass
class ContractReport:
    """``results``: check name -> ``"ok"``, ``"skipped: why"`` or ``"FAILED: why"``."""

    adapter: str
    results: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, str]:
        return {k: v for k, v in self.results.items() if v.startswith("FAILED")}

    def __str__(self) -> str:
        return "\n".join([f"contract of {self.adapter}:"] + [f"  {k:10s} {v}" for k, v in self.results.items()])


def cpu_replicas(module: nn.Module, n: int = 2) -> list[nn.Module]:
    """``torch.nn.parallel.replicate(module, n devices)`` on the CPU.

    The same module copies as ``DataParallel`` makes (``_replicate_for_data_parallel``:
    shared hooks, parameters as non-leaf copies that pass gradients back to the
    original); only the GPU broadcast is replaced by CPU views.
    """
    import importlib

    rep = importlib.import_module("torch.nn.parallel.replicate")

    def broadcast(tensors, devices, detach=False):
        return [[t.detach() if detach or not t.requires_grad else t.view_as(t) for t in tensors] for _ in devices]

    with mock.patch.object(rep, "_broadcast_coalesced_reshape", broadcast):
        return rep.replicate(module, list(range(n)))


def _forward(model: nn.Module, x: torch.Tensor, score: Any, call_kwargs: Any) -> torch.Tensor:
    kwargs = call_kwargs() if callable(call_kwargs) else dict(call_kwargs or {})
    out = model(x, score=score, **kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


def _randomise_embeddings(model: Adapter, seed: int, scale: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for e in model.embeddings():
            e.weight.copy_(torch.randn(e.weight.shape, generator=g) * scale)


def _targets(model: Adapter) -> list[nn.Module]:
    from iqprior.conditioning import find_submodule
    return [find_submodule(model.net, s.at) for s in model.injections]


def _rendezvous(model: Adapter, parties: int) -> list[Any]:
    """A barrier on every injection target: concurrent calls are all inside the network before any goes on."""
    barrier = threading.Barrier(parties, timeout=60)
    seen: set[int] = set()

    def wait(module, inputs):
        key = (threading.get_ident(), id(module))
        if key not in seen:  # once per thread and target
            seen.add(key)
            barrier.wait()
    return [t.register_forward_pre_hook(wait) for t in _targets(model)[:1]]


def run_in_threads(fns: Sequence[Callable[[], Any]]) -> list[Any]:
    """Call each of ``fns`` in its own thread; their results in order (the first error is re-raised here)."""
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def run(i):
        try:
            results[i] = fns[i]()
        except BaseException as e:  # reported in the calling thread
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def _close(a: torch.Tensor, b: torch.Tensor, atol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), atol=atol, rtol=atol))


def check_adapter(model: Union[str, Adapter], *, options: Optional[Mapping[str, Any]] = None,
                  x: Optional[torch.Tensor] = None, size: Optional[int] = None,
                  call_kwargs: Union[None, Mapping[str, Any], Callable[[], Mapping[str, Any]]] = None,
                  levels: tuple[int, int] = (2, 7), checks: Sequence[str] = CHECKS, atol: float = 1e-5,
                  seed: int = 0, raise_on_failure: bool = True) -> ContractReport:
    """Run the adapter contract (:data:`CHECKS`) on ``model``.

    Args:
        model: a registered adapter name (built with ``options``) or an
            :class:`Adapter` (checked on a deep copy; it is not modified).
        x: the input, ``(2, 3, S, S)`` in [0, 1]; default random with ``S`` =
            ``size`` or the adapter's ``native_size`` or 32.
        call_kwargs: extra keyword arguments of every forward call, or a function
            returning them per call (e.g. a fresh seeded ``torch.Generator``).
        levels: two different levels used by the checks.
        checks: a subset of :data:`CHECKS`.
        raise_on_failure: raise ``AssertionError`` listing every failed check.

    Returns:
        A :class:`ContractReport`.
    """
    import adapters

    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; choose from {CHECKS}")
    name = model if isinstance(model, str) else getattr(model, "adapter_name", type(model).__name__)
    if isinstance(model, str):
        torch.manual_seed(seed)
        model = adapters.create(model, **dict(options or {}))
    elif not isinstance(model, Adapter):
        raise TypeError(f"check_adapter takes an adapter name or an adapters.Adapter, got {type(model).__name__}")
    else:
        options = dict(model.options) if options is None else options
        model = copy.deepcopy(model)
    model.eval()
    registered = name in adapters.list_adapters()
    if x is None:
        s = size or model.native_size or 32
        x = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(seed))
    report = ContractReport(name)
    a, b = levels
    run = {"identity": _identity, "keys": _keys, "finetune": _finetune, "roundtrip": _roundtrip,
           "mixed": _mixed, "threads": _threads, "replicas": _replicas}
    ctx = _Ctx(name, registered, options or {}, x, call_kwargs, a, b, atol, seed)
    for check in CHECKS:
        if check not in checks:
            continue
        try:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                report.results[check] = run[check](copy.deepcopy(model), ctx)
        except Exception as e:  # one failing check does not hide the others
            report.results[check] = f"FAILED: {type(e).__name__}: {e}"
    if raise_on_failure and report.failures:
        raise AssertionError(str(report))
    return report


@dataclass
class _Ctx:
    name: str
    registered: bool
    options: Mapping[str, Any]
    x: torch.Tensor
    call_kwargs: Any
    a: int
    b: int
    atol: float
    seed: int


def _fail(msg: str) -> str:
    return f"FAILED: {msg}"


def _identity(model: Adapter, c: _Ctx) -> str:
    import numpy as np

    import adapters

    with torch.no_grad():
        ref = _forward(model, c.x, c.a, c.call_kwargs)
        for score in (c.b, 0, 0.55, np.int64(c.b), torch.tensor(c.a), torch.tensor([c.a, c.b])):
            out = _forward(model, c.x, score, c.call_kwargs)
            if not torch.equal(out, ref):
                return _fail(f"score={score!r} changes the output at init by {float((out - ref).abs().max()):.3g}")
        base_name = adapters.spec(c.name).base if c.registered else None
        if base_name is None:
            return "ok"
        base = adapters.create(base_name, **dict(c.options))
        missing, unexpected = base.load_state_dict(model.state_dict(), strict=False)
        if missing or set(unexpected) != {f"{s.name}.weight" for s in model.injections}:
            return _fail(f"the weights do not map onto {base_name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        out = _forward(base, c.x, None, c.call_kwargs)
        if not torch.equal(out, ref):
            return _fail(f"differs from {base_name} with the same weights by {float((out - ref).abs().max()):.3g}")
    return f"ok (equals {base_name})"


def _keys(model: Adapter, c: _Ctx) -> str:
    import adapters

    keys = list(model.state_dict())
    persistent = [f"{m}.{b}" if m else b for m, mod in model.named_modules()
                  for b, v in mod._buffers.items() if v is not None and b not in mod._non_persistent_buffers_set]
    names = [n for n, _ in model.named_parameters()] + persistent
    if sorted(keys) != sorted(names):
        extra, missing = sorted(set(keys) - set(names)), sorted(set(names) - set(keys))
        return _fail(f"state_dict keys differ from named_parameters/named_buffers: only in state_dict "
                     f"{extra[:5]}, only in names {missing[:5]}")
    emb = {f"{s.name}.weight" for s in model.injections}
    if not emb <= set(keys):
        return _fail(f"embedding keys {sorted(emb - set(keys))} missing from the state_dict")
    if len(emb) != len(model.injections):
        return _fail("two injection points share one embedding key")
    base_name = adapters.spec(c.name).base if c.registered else None
    if base_name is not None:
        base = adapters.create(base_name, **dict(c.options))
        if set(keys) - emb != set(base.state_dict()):
            return _fail(f"keys without the embeddings differ from {base_name}'s")
        base.load_state_dict(model.state_dict(), strict=False)
    return "ok"


def _finetune(model: Adapter, c: _Ctx) -> str:
    if not model.is_conditioned:
        return "skipped: no level embedding (a base adapter fine-tunes its whole network)"
    params = model.prepare_finetune(train_base=False)
    emb_ids = {id(p) for p in model.embedding_parameters()}
    if {id(p) for p in params} != emb_ids:
        return _fail("trainable_parameters(train_base=False) is not exactly the embeddings")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    levels = torch.tensor([c.a, c.b])
    try:
        losses = model.finetune_losses(c.x, c.x.flip(-1), levels)
        loss = sum(losses.values())
    except NotImplementedError:
        loss = _forward(model, c.x, levels, c.call_kwargs).square().mean()
    loss.backward()
    for n, p in model.named_parameters():
        if id(p) not in emb_ids and p.grad is not None:
            return _fail(f"a frozen parameter got a gradient: {n}")
    seen = torch.zeros(model.embeddings()[0].levels, dtype=torch.bool)
    seen[levels] = True
    for e in model.embeddings():
        g = e.weight.grad
        if g is None or not g[seen].abs().sum() > 0:
            return _fail("no gradient reached the embedding rows of the batch's levels")
        if g[~seen].abs().sum() != 0:
            return _fail("embedding rows of levels not in the batch got a gradient")
    torch.optim.Adam(params, lr=1e-2).step()
    after = model.state_dict()
    for k, v in before.items():
        if k.rsplit(".", 1)[0] in {s.name for s in model.injections}:
            changed = (after[k] != v).any(dim=1)
            if (changed & ~seen).any() or not changed[seen].all():
                return _fail("the step changed embedding rows of unseen levels (or missed a seen one)")
        elif not torch.equal(after[k], v):
            return _fail(f"an embedding-only step changed {k} (a frozen part not in eval()?)")
    return "ok"


def _roundtrip(model: Adapter, c: _Ctx) -> str:
    import adapters

    _randomise_embeddings(model, c.seed)
    with torch.no_grad():
        ref = _forward(model, c.x, torch.tensor([c.a, c.b]), c.call_kwargs)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        if c.registered:
            again = adapters.create(c.name, checkpoint=d)
            how = f"adapters.create({c.name!r}, checkpoint=dir)"
        else:
            again = copy.deepcopy(model)
            with torch.no_grad():
                for p in again.parameters():
                    p.add_(1.0)
            again.load_pretrained_weights(d)
            how = "load_pretrained_weights"
    with torch.no_grad():
        out = _forward(again.eval(), c.x, torch.tensor([c.a, c.b]), c.call_kwargs)
    if not torch.equal(out, ref):
        return _fail(f"{how} output differs by {float((out - ref).abs().max()):.3g}")
    return "ok"


def _mixed(model: Adapter, c: _Ctx) -> str:
    _randomise_embeddings(model, c.seed)
    with torch.no_grad():
        mixed = _forward(model, c.x, torch.tensor([c.a, c.b]), c.call_kwargs)
        ya = _forward(model, c.x, c.a, c.call_kwargs)
        yb = _forward(model, c.x, c.b, c.call_kwargs)
    if not (_close(mixed[0], ya[0], c.atol) and _close(mixed[1], yb[1], c.atol)):
        return _fail("a mixed-level batch differs from the batch at each row's level")
    if model.is_conditioned and _close(ya, yb, c.atol):
        return _fail("two levels give the same output with a non-zero embedding")
    return "ok"


def _threads(model: Adapter, c: _Ctx) -> str:
    _randomise_embeddings(model, c.seed)
    with torch.no_grad():
        ref = {lv: _forward(model, c.x, lv, c.call_kwargs) for lv in (c.a, c.b)}
        handles = _rendezvous(model, 2) if model.is_conditioned else []
        try:
            got = run_in_threads([lambda lv=lv: _forward(model, c.x, lv, c.call_kwargs) for lv in (c.a, c.b)])
        finally:
            for h in handles:
                h.remove()
    for lv, out in zip((c.a, c.b), got):
        if not _close(out, ref[lv], c.atol):
            return _fail(f"the thread at level {lv} got another output (max diff "
                         f"{float((out - ref[lv]).abs().max()):.3g})")
    return "ok (both threads inside the network at once)" if handles else "ok"


def _replicas(model: Adapter, c: _Ctx) -> str:
    _randomise_embeddings(model, c.seed)
    with torch.no_grad():
        ref = {lv: _forward(model, c.x, lv, c.call_kwargs) for lv in (c.a, c.b)}
    replicas = cpu_replicas(model, 2)
    handles = _rendezvous(model, 2) if model.is_conditioned else []
    try:
        got = run_in_threads([lambda r=r, lv=lv: _forward(r, c.x, lv, c.call_kwargs)
                           for r, lv in zip(replicas, (c.a, c.b))])
    finally:
        for h in handles:
            h.remove()
    for lv, out in zip((c.a, c.b), got):
        if not _close(out.detach(), ref[lv], c.atol):
            return _fail(f"the replica at level {lv} got another output (max diff "
                         f"{float((out.detach() - ref[lv]).abs().max()):.3g}); unconditioned?")
    if model.is_conditioned and not got[0].requires_grad:
        return "ok (forward only: the output carries no gradient)"
    if model.is_conditioned:
        sum(o.float().mean() for o in got).backward()
        g = model.embeddings()[0].weight.grad
        if g is None or not (g[c.a].abs().sum() > 0 and g[c.b].abs().sum() > 0):
            return _fail("gradients of the replicas did not reach the original embedding")
    return "ok"
