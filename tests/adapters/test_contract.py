"""Every registered adapter passes the adapter contract (adapters.testing.check_adapter) on a tiny config."""
from __future__ import annotations

import pytest
import torch

import adapters
from adapters.testing import CHECKS, check_adapter, cpu_replicas
from adapters.testing.registry import REGISTRY, contract_check
from iqprior import torch_compat

# per-call keyword arguments of the contract run (the tiny options are the spec's, AdapterSpec.tiny)
CALL = {"difface": lambda: {"start_step": 2, "generator": torch.Generator().manual_seed(0)}}


def _tiny(name: str):
    call = CALL.get(adapters.spec(name).base or name)
    torch.manual_seed(0)
    model = adapters.create(name, tiny=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial weights everywhere (zero-initialised output layers too); embeddings stay 0
        for n, p in model.named_parameters():
            if "score_embedding" not in n:
                p.add_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() < 2 else 0.05))
    return model, call


def _size(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# auto/auto+ build their network from a model file: their contract runs per spandrel family
# (tests/adapters/auto/test_auto.py, on adapters.auto.tiny's files)
FROM_FILE = ("auto", "auto+")
BUILT_IN = sorted(n for n in adapters.specs.SPECS if n not in FROM_FILE)


def test_every_builtin_adapter_has_tiny_options_shared_with_its_plus():
    """``tiny`` builds a network no larger than the released one (smaller where the spec says how);
    a "+" variant's tiny options are its base's."""
    for name, entry in ((n, adapters.specs.SPECS[n]) for n in BUILT_IN):
        if entry.is_plus:
            assert entry.tiny == adapters.spec(entry.base).tiny, name
        with torch.device("meta"):
            full = _size(adapters.create(name))
        tiny = _size(adapters.create(name, tiny=True))
        assert tiny < full if entry.tiny else tiny == full, (name, tiny, full)


@pytest.mark.parametrize("name", BUILT_IN)
def test_contract(name, one_thread):
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
    assert all(torch_compat.is_replica(r) for r in reps) and not torch_compat.is_replica(model)
    assert reps[0].net.conv is not model.net.conv
    assert reps[0].net.act._forward_hooks is model.net.act._forward_hooks  # replicas share the hooks


def test_each_check_is_registered_once_in_run_order():
    assert CHECKS == tuple(REGISTRY) == ("identity", "keys", "finetune", "roundtrip", "mixed", "threads", "replicas")
    with pytest.raises(ValueError, match="registered twice"):
        contract_check("keys")(lambda model, ctx: "ok")
    assert REGISTRY["keys"].__name__ == "keys" and len(REGISTRY) == len(CHECKS)  # the first one stays
