"""Every registered adapter passes the adapter contract (adapters.testing.check_adapter) on a tiny config."""
from __future__ import annotations

import pytest
import torch

import adapters
from adapters.testing import CHECKS, check_adapter, cpu_replicas

CODEFORMER = dict(config=dict(img_size=64, nf=8, ch_mult=[1, 2, 2, 4], attn_resolutions=[8], emb_dim=16,
                              codebook_size=32, dim_embd=32, n_head=2, n_layers=2, connect_list=["16", "32"]))
DAEFR = dict(ch=32, ch_mult=(1, 2), resolution=16, attn_resolutions=(8,), z_channels=32, embed_dim=32, n_embed=64,
             dim_embd=64, n_head=4, n_layers=2, dim_mlp=128)
DIFFACE = dict(unet_config=dict(image_size=32, channel_mult=[1, 2], num_res_blocks=[1, 1], attention_resolutions=[16],
                                num_head_channels=32),
               estimator_config=dict(img_size=8, embed_dim=12, depths=[2], num_heads=[2], window_size=4, scale=4,
                                     num_feat=8))
# name -> (tiny options, per-call keyword arguments)
TINY = {
    "codeformer": (CODEFORMER, None),
    "daefr": (DAEFR, None),
    "difface": (DIFFACE, lambda: {"start_step": 2, "generator": torch.Generator().manual_seed(0)}),
    "puienet": ({}, None),
    "nu2net": ({}, None),
    "iqpfr": ({"preset": "tiny"}, None),
}


def _tiny(name: str):
    options, call = TINY[name.rstrip("+")]
    torch.manual_seed(0)
    model = adapters.create(name, **options)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial weights everywhere (zero-initialised output layers too); embeddings stay 0
        for n, p in model.named_parameters():
            if "score_embedding" not in n:
                p.add_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() < 2 else 0.05))
    return model, call


# auto/auto+ build their network from a model file: their contract runs per spandrel family (test_auto.py)
FROM_FILE = ("auto", "auto+")


def test_every_builtin_adapter_has_a_tiny_config():
    builtin = [n for n in adapters.list_adapters() if n in adapters.specs.SPECS and n not in FROM_FILE]
    assert sorted({n.rstrip("+") for n in builtin}) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(n for n in adapters.specs.SPECS if n not in FROM_FILE))
def test_contract(name):
    torch.set_num_threads(1)
    model, call = _tiny(name)
    report = check_adapter(model, call_kwargs=call)
    assert set(report.results) == set(CHECKS)
    if adapters.spec(name).is_plus:
        assert all(v.startswith("ok") for v in report.results.values()), str(report)
        assert "equals" in report.results["identity"]


class _Shared(torch.nn.Module):
    """One activation module called twice per forward."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.act = torch.nn.ReLU()
        self.out = torch.nn.Conv2d(4, 3, 1)

    def forward(self, x):
        return self.out(self.act(self.act(self.conv(x))))


class _SharedAdapter(adapters.Adapter):
    def __init__(self, every_call=False):
        super().__init__("shared+")
        self.net = _Shared()
        self.enable_condition("act", (4, 1, 1), every_call=every_call)

    def forward(self, x, score=None):
        return self.run_net(x, score=score)


def test_checker_reports_broken_adapters():
    report = check_adapter(_SharedAdapter(), raise_on_failure=False, checks=("mixed", "threads"))
    assert "ran 2 times" in report.results["mixed"]
    with pytest.raises(AssertionError, match="ran 2 times"):
        check_adapter(_SharedAdapter(), checks=("mixed",))
    ok = check_adapter(_SharedAdapter(every_call=True))
    assert all(v.startswith("ok") for v in ok.results.values()), str(ok)
    with pytest.raises(ValueError, match="unknown check"):
        check_adapter(_SharedAdapter(), checks=("speed",))


def test_cpu_replicas_are_dataparallel_copies():
    model = _SharedAdapter(every_call=True)
    reps = cpu_replicas(model, 2)
    assert all(getattr(r, "_is_replica", False) for r in reps)
    assert reps[0].net.conv is not model.net.conv
    assert reps[0].net.act._forward_hooks is model.net.act._forward_hooks  # replicas share the hooks
