import pytest
import torch

from iqprior import QualityLoss, create_scorer


def test_quality_loss_is_negative_mean_score_with_gradients(small_topiq_spec):
    scorer = create_scorer([small_topiq_spec], pretrained=False, device="cpu")
    loss_fn = QualityLoss(scorer)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    loss = loss_fn(x)
    assert loss.dim() == 0
    with torch.no_grad():
        expected = -scorer(x, clip=False).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None for p in scorer.parameters())
    per_sample = QualityLoss(scorer, reduction="none")(x.detach())
    assert per_sample.shape == (2,)
    # a gradient step on the input raises the score
    y = x.detach()[:1].clone().requires_grad_(True)
    opt = torch.optim.SGD([y], lr=50.0)
    before = loss_fn(y)
    before.backward()
    opt.step()
    assert loss_fn(y).item() < before.item()


def test_quality_loss_rejects_non_differentiable_members():
    with pytest.raises(ValueError, match="niqe, brisque"):
        QualityLoss(create_scorer("offline", device="cpu"))
    with pytest.raises(ValueError, match="piqe"):
        QualityLoss(create_scorer(["piqe"], device="cpu"))
    with pytest.raises(TypeError):
        QualityLoss(lambda x: x.mean())


def test_quality_loss_keeps_scorer_in_eval(small_topiq_spec):
    loss_fn = QualityLoss(create_scorer([small_topiq_spec], pretrained=False, device="cpu"))
    torch.nn.Sequential(loss_fn).train()
    assert not any(m.net.training for m in loss_fn.scorer.members)
