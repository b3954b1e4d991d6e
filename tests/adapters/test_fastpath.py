"""Fast inference path vs exact path, and the precision setting, for every adapter (tiny configs)."""
from __future__ import annotations

import pytest
import torch

import adapters
from iqprior.fastpath import (
    TOLERANCE,
    FastPath,
    max_abs_deviation,
    set_fast_path,
    within_tolerance,
)

SIDES = {  # name: input side (the spec's tiny networks, AdapterSpec.tiny; None = the native size)
    "codeformer": 64, "codeformer+": 64, "daefr": 16, "daefr+": 16, "difface": 32, "iqpfr": None, "puienet": 24,
    "nu2net": 32,
}


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial weights everywhere (some layers are zero-initialised, which would hide a difference)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("score_embedding.weight"):
                continue
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 / max(1, p[0].numel()) ** 0.5 if p.dim() > 1 else 0.1))


def _pair(name: str):
    fast = adapters.create(name, tiny=True)
    _randomise(fast)
    exact = adapters.create(name, exact=True, tiny=True)
    exact.load_state_dict(fast.state_dict())
    return fast, exact


def _input(model, name: str, batch: int = 2) -> torch.Tensor:
    side = SIDES[name] or model.native_size
    return torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(1))


def _call(model, x: torch.Tensor, name: str) -> torch.Tensor:
    if name.startswith("difface"):  # the two networks, and the whole sampling from respaced step 2
        t = torch.tensor([400, 12])
        y = model(x, start_step=2, generator=torch.Generator().manual_seed(3))  # same noise on both paths
        return torch.cat([model.estimate(x).flatten(1), model.run_net(x * 2 - 1, t).flatten(1), y.flatten(1)], 1)
    return model(x)


@pytest.mark.parametrize("name", list(SIDES))
def test_fast_path_matches_exact_path_within_tolerance(name):
    fast, exact = _pair(name)
    x = _input(fast, name)
    with torch.no_grad():
        y_fast, y_exact = _call(fast, x, name), _call(exact, x, name)
    assert y_fast.shape == y_exact.shape and y_fast.dtype == torch.float32 and y_fast.is_contiguous()
    assert within_tolerance(y_fast, y_exact), (name, max_abs_deviation(y_fast, y_exact))
    # the fast model really is on its fast path, the exact one is untouched
    path = fast.fast_path
    assert path == (adapters.spec(name).fast_path or FastPath())
    assert fast.active_path == path and exact.active_path == FastPath()
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs) == path.channels_last
    assert all(c.weight.is_contiguous() for c in exact.modules() if isinstance(c, torch.nn.Conv2d))
    flags = [m.fast_attention for m in fast.modules() if hasattr(m, "fast_attention")]
    assert flags == [path.attention] * len(flags)
    assert not any(m.fast_attention for m in exact.modules() if hasattr(m, "fast_attention"))


@pytest.mark.parametrize("name", ["codeformer", "daefr", "difface"])
def test_fast_path_differs_only_by_rounding_and_switches_back_bit_exactly(name):
    fast, exact = _pair(name)
    x = _input(fast, name)
    with torch.no_grad():
        y_exact = _call(exact, x, name)
        y_fast = _call(fast, x, name)
        assert not torch.equal(y_fast, y_exact)      # the fast path does run other kernels ...
        fast.set_exact(True)
        assert torch.equal(_call(fast, x, name), y_exact)   # ... and `exact` restores upstream numerics bit for bit
        fast.set_exact(False)
        assert torch.equal(_call(fast, x, name), y_fast)


def test_training_mode_runs_the_exact_path():
    fast, exact = _pair("daefr")
    x = _input(fast, "daefr")
    fast.train()
    exact.train()
    torch.testing.assert_close(fast.net(x * 2 - 1), exact.net(x * 2 - 1), rtol=0, atol=0)  # not yet switched
    assert torch.equal(fast.run_net(x * 2 - 1), exact.run_net(x * 2 - 1))
    assert not any(m.fast_attention for m in fast.modules() if hasattr(m, "fast_attention"))


def test_state_dict_and_save_pretrained_unchanged_by_fast_path(tmp_path):
    fast, exact = _pair("codeformer")
    with torch.no_grad():
        fast(_input(fast, "codeformer"))
    for k, v in fast.state_dict().items():
        assert torch.equal(v, exact.state_dict()[k]), k
    fast.save_pretrained(tmp_path / "m")
    again = adapters.create("codeformer", checkpoint=tmp_path / "m")
    assert "exact" not in again.options and again.exact is False
    for k, v in again.state_dict().items():
        assert torch.equal(v, exact.state_dict()[k]), k


def test_set_fast_path_round_trip_keeps_values():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 1))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    set_fast_path(net, FastPath(channels_last=True))
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    set_fast_path(net, None)
    assert net[0].weight.is_contiguous()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("name", ["codeformer", "nu2net", "difface"])
def test_precision_flag_is_honoured(name):
    model = adapters.create(name, precision="bf16", tiny=True)
    _randomise(model)
    ref = adapters.create(name, tiny=True)
    ref.load_state_dict(model.state_dict())
    assert model.precision == "bf16" and ref.precision == "fp32"
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = _input(model, name)
    with torch.no_grad():
        y, y32 = _call(model, x, name), _call(ref, x, name)
    assert seen and seen[0] == torch.bfloat16          # the network ran under bf16 autocast
    assert y.dtype == torch.float32                     # and the output came back in float32
    dev = max_abs_deviation(y, y32)
    assert 0 < dev < 0.5, dev                           # moved by rounding, not broken
    model.set_precision("fp32")
    with torch.no_grad():
        assert within_tolerance(_call(model, x, name), y32, TOLERANCE)


def test_bad_precision_and_exact_values():
    with pytest.raises(ValueError, match="precision"):
        adapters.create("nu2net", precision="fp8")
    with pytest.raises(TypeError, match="exact"):
        adapters.create("nu2net").set_exact("yes")
    from iqprior.argument_checks import PRECISIONS
    from iqprior.fastpath import PRECISIONS as AUTOCAST
    assert tuple(AUTOCAST) == PRECISIONS      # the --precision choices of every command are the autocast ones


def build_tiny_codeformer(**options):
    from adapters.codeformer import build_codeformer
    return build_codeformer(tiny=True, **options)


def _register_tiny(monkeypatch) -> None:
    """"tiny-cf": a tiny CodeFormer with CodeFormer's fast path, for the command-line tests."""
    monkeypatch.setitem(adapters.registry._USER, "tiny-cf", adapters.AdapterSpec(
        "tiny-cf", f"{__name__}:build_tiny_codeformer", fast_path=adapters.spec("codeformer").fast_path))


def test_bench_speed_reports_fast_vs_exact_and_precision(monkeypatch, tmp_path):
    import json

    from iqprior.cli import main

    _register_tiny(monkeypatch)
    out = tmp_path / "speed"
    assert main(["bench", "speed", "--models", "tiny-cf", "--sizes", "64", "--batch-sizes", "1", "--device", "cpu",
                 "--iters", "2", "--precision", "bf16", "--out", str(out)]) == 0
    (row,) = json.loads((out / "speed.json").read_text())["rows"]
    assert row["error"] == "" and row["path"] == "channels_last + SDPA attention" and row["precision"] == "bf16"
    assert row["exact_latency_ms"] > 0 and row["speedup_vs_exact"] > 0
    assert row["latency_min_ms"] <= row["latency_ms"] <= row["latency_max_ms"]
    assert row["within_tolerance"] is True and 0 <= row["max_abs_vs_exact"] <= TOLERANCE * 10
    assert row["max_abs_vs_fp32"] > row["max_abs_vs_exact"]      # bf16 moves the output more, and says so
    md = (out / "speed.md").read_text()
    assert "bf16 vs fp32" in md and "Speed-up vs exact" in md
    assert main(["bench", "speed", "--models", "tiny-cf", "--sizes", "64", "--batch-sizes", "1", "--device", "cpu",
                 "--iters", "1", "--exact", "--out", str(out)]) == 0
    (row,) = json.loads((out / "speed.json").read_text())["rows"]
    assert row["path"] == "exact" and row["speedup_vs_exact"] is None and row["max_abs_vs_fp32"] is None


def test_restore_cli_flags(monkeypatch, tmp_path, face_paths):
    from iqprior.cli import main
    from iqprior.io import read_image

    _register_tiny(monkeypatch)
    outs = {}
    for flags in ([], ["--exact"], ["--precision", "bf16"]):
        out = tmp_path / "_".join(flags or ["fast"])
        torch.manual_seed(0)                                # the same random weights in every run
        assert main(["restore", str(face_paths[0]), "--model", "tiny-cf", "--aligned", "--out", str(out),
                     "--no-progress", *flags]) == 0
        outs[tuple(flags)] = read_image(next(out.glob("*.png")))
    fast, exact, bf16 = outs[()], outs[("--exact",)], outs[("--precision", "bf16")]
    assert (fast - exact).abs().max() <= 1 / 255          # within 8-bit rounding
    assert not torch.equal(bf16, exact)                    # the precision flag reached the model


@pytest.mark.slow
def test_compile_for_inference_keeps_outputs_and_keys():
    """``--compile``: torch.compile in place (30-120 s on 2 CPU threads); same keys, output within tolerance."""
    fast, exact = _pair("daefr")
    keys = list(fast.state_dict())
    fast.compile_for_inference()
    assert list(fast.state_dict()) == keys
    x = _input(fast, "daefr")
    with torch.no_grad():
        assert within_tolerance(fast(x), exact(x))
