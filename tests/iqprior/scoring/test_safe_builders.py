"""ARNIQA and CLIP-IQA built by iqprior: files read as tensors (TorchScript never run), same outputs."""
import warnings

import torch

from iqprior.scoring.builders import build_arniqa, build_clipiqa, clip_rn50
from iqprior.scoring.members import build_member


class _SkRidge(torch.nn.Module):
    """The layout sk2torch gives ARNIQA's Ridge regressors (weights (1, F), biases (1,))."""

    def __init__(self, f):
        super().__init__()
        self.weights = torch.nn.Parameter(torch.randn(1, f) * 0.01)
        self.biases = torch.nn.Parameter(torch.tensor([0.3]))

    def forward(self, x):
        return x @ self.weights.t() + self.biases


def test_arniqa_from_hub_file_and_scripted_regressor(tmp_path, monkeypatch):
    src = build_arniqa(None)
    with torch.no_grad():
        for p in src.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    reg = _SkRidge(4096)
    src.regressor.load_state_dict(reg.state_dict())
    (tmp_path / "w").mkdir()
    torch.save({f"model.{k}": v for k, v in src.encoder.state_dict().items()} | {"projector.0.weight": torch.ones(2)},
               tmp_path / "w" / "ARNIQA.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(reg), tmp_path / "w" / "regressor_koniq10k.pth")
    monkeypatch.setenv("IQPRIOR_WEIGHTS", str(tmp_path / "w"))
    member = build_member("arniqa")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(member(x), src(x).reshape(2), atol=1e-6)


def test_clipiqa_loads_rn50_tensors_strictly(tmp_path):
    src = clip_rn50()
    path = tmp_path / "clip.pt"
    state = src.state_dict()
    torch.save(state, path)
    net = build_clipiqa({"RN50.pt": path})
    got = net.clip_model[0].state_dict()
    assert all(torch.equal(got[k], state[k]) for k in state)
