"""Model x check matrix: :func:`iqprior.condition` on architectures nobody here wrote (basicsr's).

    python benchmarks/conditioning_matrix.py              # prints the Markdown table
    python benchmarks/conditioning_matrix.py --out results/conditioning_matrix.md

Each model is a tiny configuration of a basicsr architecture with RANDOM
weights, conditioned with an automatic (per-channel) embedding that is then
set to random values so that levels differ. Checks (each compares against the
plain eager call of the same wrapper):

- ``threads``: two threads, levels 2 and 7, both inside the network at once;
- ``replicas``: ``DataParallel``-style replicas (CPU stand-in for the broadcast)
  in two threads; gradients reach the original embedding;
- ``compile``: ``torch._dynamo.explain`` finds no graph break for an int and a
  tensor score; ``torch.compile(fullgraph=True, backend="aot_eager")`` matches eager;
- ``export``: ``torch.export.export`` with a fixed int score matches eager;
- ``ckpt-reentrant`` / ``ckpt-nonreentrant``: ``torch.utils.checkpoint`` around a
  block containing the conditioned module; the embedding's gradient equals the
  un-checkpointed one;
- ``dcp``: ``torch.distributed.checkpoint.state_dict.get_model_state_dict`` /
  ``set_model_state_dict`` round trip (keys = ``state_dict()`` keys);
- ``bn-freeze``: after ``freeze_modes``, embedding-only Adam steps change no
  buffer of the base (BatchNorm statistics, spectral-norm vectors) and no output
  at an untrained level;
- ``amp``: under ``torch.autocast("cpu", bfloat16)`` a zero embedding row leaves the
  bare network's output bitwise, another level changes it, and the error to fp32 is no
  worse than the bare network's (random weights: HiFaceGAN's own bf16 error is large).

The tests (tests/iqprior/conditioning/test_foreign_models.py) run the same functions.
"""
from __future__ import annotations

import argparse
import copy
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.testing import run_in_threads  # noqa: E402
from iqprior.conditioning import condition, find_submodule, freeze_modes  # noqa: E402

A, B = 2, 7


def _rrdbnet():
    from basicsr.archs.rrdbnet_arch import RRDBNet
    net = RRDBNet(num_in_ch=3, num_out_ch=3, scale=2, num_feat=8, num_block=2, num_grow_ch=4)
    return net, "conv_body", "body", torch.rand(2, 3, 8, 8)


def _swinir():
    from basicsr.archs.swinir_arch import SwinIR
    net = SwinIR(img_size=8, patch_size=1, in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                 mlp_ratio=2, upscale=1, img_range=1.0, upsampler="", resi_connection="1conv")
    # tokens (B, L, C) after the first Swin block; the checkpointed block is the residual group
    return net, "layers.0.residual_group.blocks.0", "layers.0.residual_group", torch.rand(2, 3, 8, 8)


def _hifacegan():
    from basicsr.archs.hifacegan_arch import HiFaceGAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = HiFaceGAN(num_feat=4, crop_size=64, z_dim=8, norm_g="spectralspadebatch3x3")
    return net, "head_0", "g_middle_0", torch.rand(2, 3, 64, 64)


MODELS: dict[str, Callable] = {"RRDBNet": _rrdbnet, "SwinIR": _swinir, "HiFaceGAN": _hifacegan}
CHECKS = ("threads", "replicas", "compile", "export", "ckpt-reentrant", "ckpt-nonreentrant", "dcp", "bn-freeze",
          "amp")


def build(model: str, seed: int = 0):
    """``(wrapped, at, block, x)``: the conditioned network (random, eval) with a random embedding."""
    from iqprior.basicsr_compat import install_shim
    install_shim()
    torch.manual_seed(seed)
    net, at, block, x = MODELS[model]()
    net.eval()
    wrapped = condition(net, at=at)
    with torch.no_grad():
        wrapped(x, score=0)  # materialises the automatic embedding shape
        emb = wrapped.embeddings()[0]
        emb.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(seed + 1))
    return wrapped, at, block, x


def _close(a, b, tol=1e-5):
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=tol, rtol=tol)


def _barrier(target: nn.Module, parties: int = 2):
    barrier, seen = threading.Barrier(parties, timeout=60), set()

    def wait(module, inputs):
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            barrier.wait()
    return target.register_forward_pre_hook(wait)


def check_threads(w, at, block, x) -> str:
    with torch.no_grad():
        ref = [w(x, score=s) for s in (A, B)]
        assert not _close(ref[0], ref[1]), "levels give the same output"
        h = _barrier(find_submodule(w.wrapped_network(), at))
        try:
            got = run_in_threads([lambda s=s: w(x, score=s) for s in (A, B)])
        finally:
            h.remove()
    assert all(_close(g, r) for g, r in zip(got, ref)), "a thread got the other thread's level"
    return "ok"


def check_replicas(w, at, block, x) -> str:
    from adapters.testing import cpu_replicas
    with torch.no_grad():
        ref = [w(x, score=s) for s in (A, B)]
    reps = cpu_replicas(w, 2)
    h = _barrier(find_submodule(w.wrapped_network(), at))
    try:
        got = run_in_threads([lambda r=r, s=s: r(x, score=s) for r, s in zip(reps, (A, B))])
    finally:
        h.remove()
    assert all(_close(g.detach(), r) for g, r in zip(got, ref)), "a replica ran unconditioned or at another level"
    sum(g.mean() for g in got).backward()
    grad = w.embeddings()[0].weight.grad
    assert grad is not None and grad[A].abs().sum() > 0 and grad[B].abs().sum() > 0, "no gradient from replicas"
    return "ok"


def check_compile(w, at, block, x) -> str:
    import torch._dynamo
    breaks = []
    for score in (5, torch.tensor(5), torch.tensor([A, B])):
        torch._dynamo.reset()
        ex = torch._dynamo.explain(w)(x, score=score)
        breaks.append(ex.graph_break_count)
        assert ex.graph_break_count == 0, f"graph breaks for score={score!r}: {ex.break_reasons}"
    torch._dynamo.reset()
    c = torch.compile(w, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        for score in (A, torch.tensor([A, B])):
            assert _close(c(x, score=score), w(x, score=score), 1e-4), f"compiled output differs (score={score!r})"
    torch._dynamo.reset()
    return "ok (0 graph breaks)"


def check_export(w, at, block, x) -> str:
    with torch.no_grad():
        ep = torch.export.export(w, (x,), {"score": A})
        assert _close(ep.module()(x, score=A), w(x, score=A), 1e-4), "exported output differs"
    return "ok"


def _checkpointed(w, block: str, reentrant: bool):
    w = copy.deepcopy(w)
    mod = find_submodule(w.wrapped_network(), block)
    inner = mod.forward
    mod.forward = lambda *a: torch.utils.checkpoint.checkpoint(inner, *a, use_reentrant=reentrant)
    return w


def _emb_grad(w, x):
    w.zero_grad()
    w.requires_grad_(True)
    w(x.requires_grad_(True), score=torch.tensor([A, B])).square().mean().backward()
    return w.embeddings()[0].weight.grad.clone()


def check_ckpt(w, at, block, x, reentrant: bool) -> str:
    ref = _emb_grad(copy.deepcopy(w), x.clone())
    got = _emb_grad(_checkpointed(w, block, reentrant), x.clone())
    assert ref[[A, B]].abs().sum() > 0
    assert _close(got, ref, 1e-5), f"embedding gradient differs by {float((got - ref).abs().max()):.3g}"
    return "ok"


def check_dcp(w, at, block, x) -> str:
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict
    sd = get_model_state_dict(w)
    assert sorted(sd) == sorted(w.state_dict()), "DCP keys differ from state_dict keys"
    other = copy.deepcopy(w)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    set_model_state_dict(other, sd)
    with torch.no_grad():
        assert _close(other(x, score=B), w(x, score=B)), "DCP round trip changes the output"
    return f"ok ({len(sd)} keys)"


def check_bn_freeze(w, at, block, x) -> str:
    net = w.wrapped_network()
    stats = [n for n, _ in w.named_buffers()]
    with torch.no_grad():
        before_out = w(x, score=0)
    before = {k: v.clone() for k, v in w.state_dict().items()}
    emb = w.embeddings()[0]
    w.requires_grad_(False)
    emb.weight.requires_grad_(True)
    freeze_modes(w.train())
    assert not net.training or not any(m.training for m in net.modules() if list(m.buffers())), "base in train()"
    opt = torch.optim.Adam([emb.weight], lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        w(x, score=torch.tensor([A, B])).square().mean().backward()
        opt.step()
    after = w.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    name = w.injections[0].name + ".weight"
    assert changed == [name], f"changed beyond the embedding: {changed[:4]}"
    moved = (before[name] != after[name]).any(1).nonzero().flatten().tolist()
    assert moved == [A, B], f"rows {moved} moved"
    w.eval()
    with torch.no_grad():
        assert torch.equal(w(x, score=0), before_out), "output at an untrained level moved"
    return f"ok ({len(stats)} buffers)" if stats else "ok (no buffers)"


def check_amp(w, at, block, x) -> str:
    net = w.wrapped_network()
    with torch.no_grad():
        w.embeddings()[0].weight[0].zero_()
        ref, bare = w(x, score=B), net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, out0, bare16 = w(x, score=B), w(x, score=0), net(x)
    assert torch.equal(out0, bare16), "a zero embedding row changes the bf16 output"
    assert not torch.equal(out, bare16), "the level has no effect under autocast"
    err = float((out.float() - ref).abs().max() / (ref.abs().max() + 1e-8))
    base_err = float((bare16.float() - bare).abs().max() / (bare.abs().max() + 1e-8))
    assert err < 2 * base_err + 0.05, f"bf16 output off by {err:.3g} (relative), the bare network by {base_err:.3g}"
    return f"ok (bf16 rel. err {err:.2g}, bare {base_err:.2g})"


RUN = {"threads": check_threads, "replicas": check_replicas, "compile": check_compile, "export": check_export,
       "ckpt-reentrant": lambda *a: check_ckpt(*a, reentrant=True),
       "ckpt-nonreentrant": lambda *a: check_ckpt(*a, reentrant=False),
       "dcp": check_dcp, "bn-freeze": check_bn_freeze, "amp": check_amp}


def run_check(model: str, check: str) -> str:
    """Run one check on a freshly built ``model``; raises ``AssertionError`` on failure."""
    return RUN[check](*build(model))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print("RANDOM weights, tiny configurations (a plumbing check, not quality)")
    rows = ["| model | " + " | ".join(CHECKS) + " |", "|---" * (len(CHECKS) + 1) + "|"]
    for model in MODELS:
        cells = []
        for check in CHECKS:
            try:
                cells.append(run_check(model, check))
            except Exception as e:
                cells.append(f"FAILED: {type(e).__name__}: {str(e)[:80]}")
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
