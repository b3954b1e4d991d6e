"""DifFace's respaced DDIM sampler: timesteps and coefficients against upstream facts and hand computation."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from adapters.difface import DifFaceSampler, SamplerConfig, space_timesteps

SCHEDULE = Path("/work/shared/reference/difface_schedule.json")


@pytest.fixture(scope="module")
def sampler() -> DifFaceSampler:
    return DifFaceSampler()


def test_timesteps_match_upstream_schedule(sampler):
    if not SCHEDULE.is_file():
        pytest.skip(f"{SCHEDULE} not available")
    ref = json.loads(SCHEDULE.read_text())
    assert sampler.num_steps == ref["num_timesteps_spaced"] == 250
    assert sampler.timestep_map[:5].tolist() == ref["timestep_map_first5"]
    assert sampler.timestep_map[-3:].tolist() == ref["timestep_map_last3"]
    assert sampler.config.start_step == ref["start_timesteps"]
    assert int(sampler.timestep_map[ref["start_timesteps"]]) == ref["q_sample_orig_t_equiv"]
    steps = sampler.timesteps()
    assert len(steps) == 100
    assert int(steps[0]) == ref["first_denoise_step_orig_t"] and int(steps[-1]) == ref["last_denoise_step_orig_t"]
    assert float(sampler.sqrt_alphas_cumprod[100]) == pytest.approx(ref["sqrt_alphas_cumprod_at_100"], abs=1e-12)
    assert float(sampler.sqrt_one_minus_alphas_cumprod[100]) == pytest.approx(ref["sqrt_one_minus_at_100"], abs=1e-12)


def test_coefficients_by_hand(sampler):
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    abar = []
    acc = 1.0
    for b in betas:
        acc *= 1 - b
        abar.append(acc)
    assert sampler.train_betas[[0, 500, 999]].tolist() == pytest.approx([1e-4, betas[500], 0.02], rel=1e-12)
    # respaced process: abar kept at original 0, 4, ..., 996; betas from consecutive ratios
    assert sampler.alphas_cumprod[100].item() == pytest.approx(abar[400], rel=1e-12)
    assert sampler.betas[1].item() == pytest.approx(1 - abar[4] / abar[0], rel=1e-12)
    assert sampler.betas[0].item() == pytest.approx(betas[0], rel=1e-12)
    # DDIM sigma with eta = 0.5 at respaced step 99 (original 396 -> 392); zero at step 0
    a, ap = abar[396], abar[392]
    sigma = 0.5 * math.sqrt((1 - ap) / (1 - a)) * math.sqrt(1 - a / ap)
    assert sampler.ddim_sigma[99].item() == pytest.approx(sigma, rel=1e-10)
    assert sampler.ddim_sigma[0].item() == 0.0
    # learned range: v = +1 -> log beta_t, v = -1 -> clipped log posterior variance
    x = torch.zeros(1, 3, 2, 2)
    for v, expect in ((1.0, math.log(1 - a / ap)),
                      (-1.0, math.log((1 - a / ap) * (1 - ap) / (1 - a)))):
        out = sampler.p_mean_variance(torch.cat([torch.zeros_like(x), torch.full_like(x, v)], 1), x, 99)
        torch.testing.assert_close(out["log_variance"], torch.full_like(x, expect))
    # at step 0 the clipped posterior log variance borrows step 1's value
    assert sampler.posterior_log_variance_clipped[0] == sampler.posterior_log_variance_clipped[1]


def test_p_mean_variance_and_ddim_step(sampler):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=g)
    out = torch.randn(2, 6, 4, 4, generator=g) * 3
    s = 50
    a, ap = sampler.alphas_cumprod[s].item(), sampler.alphas_cumprod_prev[s].item()
    eps = out[:, :3]
    x0 = (x / math.sqrt(a) - math.sqrt(1 / a - 1) * eps).clamp(-1, 1)
    res = sampler.p_mean_variance(out, x, s)
    torch.testing.assert_close(res["pred_xstart"], x0)
    assert res["pred_xstart"].abs().max() <= 1  # clip_denoised
    noise = torch.randn(2, 3, 4, 4, generator=g)
    prev, x0_out = sampler.ddim_step(out, x, s, noise=noise)
    sigma = sampler.ddim_sigma[s].item()
    # the update uses the raw epsilon, not one re-derived from the clipped x0 (as upstream)
    expect = x0 * math.sqrt(ap) + math.sqrt(1 - ap - sigma ** 2) * eps + sigma * noise
    torch.testing.assert_close(prev, expect)
    torch.testing.assert_close(x0_out, x0)
    # q_sample at the start step
    x0 = torch.rand(1, 3, 4, 4) * 2 - 1
    n = torch.randn(1, 3, 4, 4, generator=g)
    torch.testing.assert_close(sampler.q_sample(x0, 100, noise=n),
                               math.sqrt(sampler.alphas_cumprod[100].item()) * x0
                               + math.sqrt(1 - sampler.alphas_cumprod[100].item()) * n)


def test_sample_loop_and_generator(sampler):
    seen = []

    def model_fn(x_t, t):
        seen.append(int(t[0]))
        return torch.cat([torch.zeros_like(x_t), torch.zeros_like(x_t)], 1)  # eps = 0

    est = torch.rand(1, 3, 4, 4) * 2 - 1
    a = sampler.sample(model_fn, est, start_step=3, generator=torch.Generator().manual_seed(1))
    assert seen == [8, 4, 0]
    b = sampler.sample(model_fn, est, start_step=3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="start_step"):
        sampler.sample(model_fn, est, start_step=0)
    with pytest.raises(ValueError, match="channels"):
        sampler.p_mean_variance(torch.zeros(1, 3, 4, 4), est, 1)


def test_respacing_variants():
    assert space_timesteps(1000, "ddim250") == list(range(0, 1000, 4))
    assert space_timesteps(10, "5") == [0, 2, 4, 7, 9]
    assert len(space_timesteps(1000, "")) == 1000
    with pytest.raises(ValueError, match="respacing"):
        space_timesteps(1000, "fast")
    with pytest.raises(ValueError, match="exactly"):
        space_timesteps(1000, "ddim3000")
    eta0 = DifFaceSampler(SamplerConfig(eta=0.0))
    assert float(eta0.ddim_sigma.abs().max()) == 0.0
    with pytest.raises(ValueError, match="unknown sampler option"):
        DifFaceSampler(steps=10)


def test_training_noise_is_the_forward_process(sampler):
    x0 = torch.rand(3, 3, 4, 4) * 2 - 1
    x_t, t, noise = sampler.training_noise(x0, generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.long and bool(((t >= 0) & (t < 1000)).all())
    abar = sampler.train_alphas_cumprod[t].float().view(-1, 1, 1, 1)
    torch.testing.assert_close(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
