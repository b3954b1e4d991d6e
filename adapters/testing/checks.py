"""The contract checks, in the order they run (each registered once, with :func:`~.registry.contract_check`)."""
from __future__ import annotations

import copy
import tempfile

import torch

from iqprior import torch_compat

from ..base import Adapter
from .registry import Context, base_of, close, contract_check, fail, forward, randomise_embeddings
from .threads import cpu_replicas, rendezvous, run_in_threads


@contract_check("identity")
def identity(model: Adapter, c: Context) -> str:
    import numpy as np

    with torch.no_grad():
        ref = forward(model, c.x, c.a, c.call_kwargs)
        for score in (c.b, 0, 0.55, np.int64(c.b), torch.tensor(c.a), torch.tensor([c.a, c.b])):
            out = forward(model, c.x, score, c.call_kwargs)
            if not torch.equal(out, ref):
                return fail(f"score={score!r} changes the output at init by {float((out - ref).abs().max()):.3g}")
        base, base_name = base_of(model, c)
        if base is None:
            return "ok"
        missing, unexpected = base.load_state_dict(model.state_dict(), strict=False)
        if missing or set(unexpected) != {f"{s.name}.weight" for s in model.injections}:
            return fail(f"the weights do not map onto {base_name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        out = forward(base, c.x, None, c.call_kwargs)
        if not torch.equal(out, ref):
            return fail(f"differs from {base_name} with the same weights by {float((out - ref).abs().max()):.3g}")
    return f"ok (equals {base_name})"


@contract_check("keys")
def keys(model: Adapter, c: Context) -> str:

    keys = list(model.state_dict())
    slots = {m: torch_compat.module_slots(mod) for m, mod in model.named_modules()}
    persistent = [f"{m}.{b}" if m else b for m, s in slots.items()
                  for b, v in s.buffers.items() if v is not None and b not in s.non_persistent]
    names = [n for n, _ in model.named_parameters()] + persistent
    if sorted(keys) != sorted(names):
        extra, missing = sorted(set(keys) - set(names)), sorted(set(names) - set(keys))
        return fail(f"state_dict keys differ from named_parameters/named_buffers: only in state_dict "
                     f"{extra[:5]}, only in names {missing[:5]}")
    emb = {f"{s.name}.weight" for s in model.injections}
    if not emb <= set(keys):
        return fail(f"embedding keys {sorted(emb - set(keys))} missing from the state_dict")
    if len(emb) != len(model.injections):
        return fail("two injection points share one embedding key")
    base, base_name = base_of(model, c)
    if base is not None:
        if set(keys) - emb != set(base.state_dict()):
            return fail(f"keys without the embeddings differ from {base_name}'s")
        base.load_state_dict(model.state_dict(), strict=False)
    return "ok"


@contract_check("finetune")
def finetune(model: Adapter, c: Context) -> str:
    if not model.is_conditioned:
        return "skipped: no level embedding (a base adapter fine-tunes its whole network)"
    params = model.prepare_finetune(train_base=False)
    emb_ids = {id(p) for p in model.embedding_parameters()}
    if {id(p) for p in params} != emb_ids:
        return fail("trainable_parameters(train_base=False) is not exactly the embeddings")
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    levels = torch.tensor([c.a, c.b])
    try:
        losses = model.finetune_losses(c.x, c.x.flip(-1), levels)
        loss = sum(losses.values())
    except NotImplementedError:
        loss = forward(model, c.x, levels, c.call_kwargs).square().mean()
    loss.backward()
    for n, p in model.named_parameters():
        if id(p) not in emb_ids and p.grad is not None:
            return fail(f"a frozen parameter got a gradient: {n}")
    seen = torch.zeros(model.embeddings()[0].levels, dtype=torch.bool)
    seen[levels] = True
    for e in model.embeddings():
        g = e.weight.grad
        if g is None or not g[seen].abs().sum() > 0:
            return fail("no gradient reached the embedding rows of the batch's levels")
        if g[~seen].abs().sum() != 0:
            return fail("embedding rows of levels not in the batch got a gradient")
    torch.optim.Adam(params, lr=1e-2).step()
    after = model.state_dict()
    for k, v in before.items():
        if k.rsplit(".", 1)[0] in {s.name for s in model.injections}:
            changed = (after[k] != v).any(dim=1)
            if (changed & ~seen).any() or not changed[seen].all():
                return fail("the step changed embedding rows of unseen levels (or missed a seen one)")
        elif not torch.equal(after[k], v):
            return fail(f"an embedding-only step changed {k} (a frozen part not in eval()?)")
    return "ok"


@contract_check("roundtrip")
def roundtrip(model: Adapter, c: Context) -> str:
    import adapters

    randomise_embeddings(model, c.seed)
    with torch.no_grad():
        ref = forward(model, c.x, torch.tensor([c.a, c.b]), c.call_kwargs)
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
        out = forward(again.eval(), c.x, torch.tensor([c.a, c.b]), c.call_kwargs)
    if not torch.equal(out, ref):
        return fail(f"{how} output differs by {float((out - ref).abs().max()):.3g}")
    return "ok"


@contract_check("mixed")
def mixed(model: Adapter, c: Context) -> str:
    randomise_embeddings(model, c.seed)
    with torch.no_grad():
        mixed = forward(model, c.x, torch.tensor([c.a, c.b]), c.call_kwargs)
        ya = forward(model, c.x, c.a, c.call_kwargs)
        yb = forward(model, c.x, c.b, c.call_kwargs)
    if not (close(mixed[0], ya[0], c.atol) and close(mixed[1], yb[1], c.atol)):
        return fail("a mixed-level batch differs from the batch at each row's level")
    if model.is_conditioned and close(ya, yb, c.atol):
        return fail("two levels give the same output with a non-zero embedding")
    return "ok"


@contract_check("threads")
def threads(model: Adapter, c: Context) -> str:
    randomise_embeddings(model, c.seed)
    with torch.no_grad():
        ref = {lv: forward(model, c.x, lv, c.call_kwargs) for lv in (c.a, c.b)}
        handles = rendezvous(model, 2) if model.is_conditioned else []
        try:
            got = run_in_threads([lambda lv=lv: forward(model, c.x, lv, c.call_kwargs) for lv in (c.a, c.b)])
        finally:
            for h in handles:
                h.remove()
    for lv, out in zip((c.a, c.b), got):
        if not close(out, ref[lv], c.atol):
            return fail(f"the thread at level {lv} got another output (max diff "
                         f"{float((out - ref[lv]).abs().max()):.3g})")
    return "ok (both threads inside the network at once)" if handles else "ok"


@contract_check("replicas")
def replicas(model: Adapter, c: Context) -> str:
    randomise_embeddings(model, c.seed)
    with torch.no_grad():
        ref = {lv: forward(model, c.x, lv, c.call_kwargs) for lv in (c.a, c.b)}
    replicas = cpu_replicas(model, 2)
    handles = rendezvous(model, 2) if model.is_conditioned else []
    try:
        got = run_in_threads([lambda r=r, lv=lv: forward(r, c.x, lv, c.call_kwargs)
                           for r, lv in zip(replicas, (c.a, c.b))])
    finally:
        for h in handles:
            h.remove()
    for lv, out in zip((c.a, c.b), got):
        if not close(out.detach(), ref[lv], c.atol):
            return fail(f"the replica at level {lv} got another output (max diff "
                         f"{float((out.detach() - ref[lv]).abs().max()):.3g}); unconditioned?")
    if model.is_conditioned and not got[0].requires_grad:
        return "ok (forward only: the output carries no gradient)"
    if model.is_conditioned:
        sum(o.float().mean() for o in got).backward()
        g = model.embeddings()[0].weight.grad
        if g is None or not (g[c.a].abs().sum() > 0 and g[c.b].abs().sum() > 0):
            return fail("gradients of the replicas did not reach the original embedding")
    return "ok"
