"""DifFace / DifFace+ adapters: tiny-config pipeline, official key layout and file formats, "+" identity."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import adapters
from adapters.difface import SwinIR, SwinIRConfig, UNet, UNetConfig, build_difface
from iqprior.checkpoint import CheckpointError

REFERENCE = Path("/work/shared/reference")
# the spec's tiny networks (AdapterSpec.tiny): the released structure (attention levels, shifted windows,
# unshuffle + nearest+conv) at tiny sizes
TINY = adapters.spec("difface").tiny
TINY_UNET, TINY_EST = TINY["unet_config"], TINY["estimator_config"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial weights everywhere (the zero-initialised output convs and attention projections too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() < 2 else 0.05))


@pytest.fixture
def tiny_state() -> dict[str, torch.Tensor]:
    model = build_difface(**TINY)
    _randomise(model)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _tiny(name: str = "difface", state=None, **options) -> adapters.Adapter:
    model = adapters.create(name, **TINY, **options)
    if state is not None:
        model.load_state_dict(state, strict=False)  # "+": score_embedding stays at zero
    return model


def test_forward_is_the_difface_pipeline(tiny_state):
    """start_step=2 by hand: clamp(estimator), q_sample to respaced 2, DDIM steps 1 and 0, -> [0, 1]."""
    model = _tiny(state=tiny_state, exact=True)  # upstream's arithmetic, step by step

    x = torch.rand(2, 3, 32, 32)
    y = model(x, start_step=2, generator=torch.Generator().manual_seed(3))
    assert y.shape == x.shape and torch.isfinite(y).all()

    s, g = model.sampler, torch.Generator().manual_seed(3)
    with torch.no_grad():
        est = model.estimator(x).clamp(0, 1) * 2 - 1
        abar = s.alphas_cumprod
        xt = abar[2].sqrt().float() * est + (1 - abar[2]).sqrt().float() * torch.empty_like(est).normal_(generator=g)
        for i in (1, 0):
            eps = model.unet(xt, torch.tensor([4 * i] * 2))[:, :3]           # original t = 4, then 0
            x0 = ((1 / abar[i]).sqrt().float() * xt - (1 / abar[i] - 1).sqrt().float() * eps).clamp(-1, 1)
            prev = abar[i - 1] if i else torch.tensor(1.0, dtype=torch.float64)
            sigma = 0.5 * ((1 - prev) / (1 - abar[i]) * (1 - abar[i] / prev)).sqrt()
            xt = x0 * prev.sqrt().float() + (1 - prev - sigma ** 2).sqrt().float() * eps
            if i:
                xt = xt + sigma.float() * torch.empty_like(xt).normal_(generator=g)
    torch.testing.assert_close(y, (xt + 1) / 2, atol=1e-5, rtol=1e-5)


def test_generator_makes_runs_reproducible(tiny_state):
    model = _tiny(state=tiny_state)
    x = torch.rand(1, 3, 32, 32)
    a = model(x, start_step=2, generator=torch.Generator().manual_seed(0))
    b = model(x, start_step=2, generator=torch.Generator().manual_seed(0))
    c = model(x, start_step=2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-4
    # the option works as the per-call argument does
    opt = _tiny(state=tiny_state, start_step=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(opt(x), a, rtol=0, atol=0)
    seeded = _tiny(state=tiny_state, start_step=2, seed=0)  # a fresh generator per call
    torch.testing.assert_close(seeded(x), a, rtol=0, atol=0)
    torch.testing.assert_close(seeded(x), a, rtol=0, atol=0)


def test_non_native_size_round_trip(tiny_state):
    """Other sizes: bicubic (antialias) to the native size, restore, back; output not clamped."""
    model = _tiny(state=tiny_state)
    x = torch.rand(1, 3, 40, 56)
    y = model(x, start_step=1, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    x32 = F.interpolate(x, size=(32, 32), mode="bicubic", antialias=True)
    y32 = model(x32, start_step=1, generator=torch.Generator().manual_seed(0))
    back = F.interpolate(y32, size=(40, 56), mode="bicubic", antialias=True)
    torch.testing.assert_close(y, back, atol=1e-5, rtol=1e-5)


def test_bad_inputs_and_options():
    model = _tiny()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="start_step"):
        model(torch.rand(1, 3, 32, 32), start_step=250)
    with pytest.raises(TypeError, match="unknown DifFace option"):
        build_difface(fidelity=0.5)
    with pytest.raises(ValueError, match="precision"):
        build_difface(precision="fp8", **TINY)
    with pytest.raises(ValueError, match="unknown UNet option"):
        build_difface(unet_config={"channels": 3})
    with pytest.raises(ValueError, match="agree"):
        build_difface(unet_config=TINY_UNET)  # 32px UNet with the released 512px estimator


def test_bf16_autocast_runs_on_cpu(tiny_state):
    model = _tiny(state=tiny_state, precision="bf16")
    y = model(torch.rand(1, 3, 32, 32), start_step=1, generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("which", ["unet", "swinir"])
def test_full_size_keys_equal_manifest(which):
    path = REFERENCE / f"difface_{which}_manifest.json"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    manifest = json.loads(path.read_text())
    with torch.device("meta"):
        net = UNet(UNetConfig()) if which == "unet" else SwinIR(SwinIRConfig())
    got = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in net.state_dict().items()]
    assert got == [(e[0], e[1], e[2]) for e in manifest["entries"]]
    params = {k for k, _ in net.named_parameters()}
    assert params == {e[0] for e in manifest["entries"] if e[3]}


def test_released_config_is_the_default():
    model_cfg = UNetConfig()
    assert (model_cfg.model_channels, model_cfg.out_channels, model_cfg.channel_mult) == (32, 6, (1, 2, 4, 8, 8, 16, 16))
    est = SwinIRConfig()
    assert (est.embed_dim, est.depths, est.window_size, est.scale, est.img_size) == (180, (6,) * 8, 8, 8, 64)
    spec = adapters.spec("difface")
    assert spec.official_files == ("iddpm_ffhq512_ema500000.pth",)
    assert spec.official_options == {"estimator_checkpoint": "swinir_restoration512_L1.pth"}
    from iqprior import weights
    assert {"iddpm_ffhq512_ema500000.pth", "swinir_restoration512_L1.pth"} <= set(weights.REGISTRY)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_files_load_strictly(tmp_path, tiny_state, prefix):
    """UNet file: raw dict; SwinIR file: trainer dict with ``state_dict``; keys with/without ``module.``."""
    src = _tiny(state=tiny_state)
    unet_file, est_file = tmp_path / "iddpm.pth", tmp_path / "swinir.pth"
    torch.save({prefix + k: v for k, v in src.unet.state_dict().items()}, unet_file)
    torch.save({"iters_start": 5, "log_step": {"train": 1},
                "state_dict": {prefix + k: v for k, v in src.estimator.state_dict().items()}}, est_file)
    model = adapters.create("difface", checkpoint=unet_file, estimator_checkpoint=str(est_file), **TINY)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
    assert model.estimator_source == str(est_file) and "estimator_checkpoint" not in model.options
    plus = adapters.create("difface+", checkpoint=unet_file, estimator_checkpoint=str(est_file), **TINY)
    torch.testing.assert_close(plus.unet.state_dict(), src.unet.state_dict(), rtol=0, atol=0)


def test_estimator_file_without_buffers_loads(tmp_path, tiny_state):
    src = _tiny(state=tiny_state)
    state = {k: v for k, v in src.estimator.state_dict().items()
             if not k.endswith(("attn_mask", "relative_position_index"))}
    torch.save({"state_dict": state}, tmp_path / "e.pth")
    model = _tiny()
    model.load_estimator(tmp_path / "e.pth")
    torch.testing.assert_close(model.estimator.state_dict(), src.estimator.state_dict(), rtol=0, atol=0)


def test_wrong_and_truncated_files_are_clear_errors(tmp_path, tiny_state):
    src = _tiny(state=tiny_state)
    est_file = tmp_path / "swinir.pth"
    torch.save({"state_dict": src.estimator.state_dict()}, est_file)
    model = _tiny()
    with pytest.raises(CheckpointError, match="missing .*another model"):
        model.load_official(est_file)  # the estimator's file given as the UNet's
    unet_file = tmp_path / "iddpm.pth"
    torch.save(src.unet.state_dict(), unet_file)
    with pytest.raises(CheckpointError, match="missing"):
        model.load_estimator(unet_file)
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(unet_file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        model.load_official(truncated)
    other = dict(TINY_UNET, model_channels=64)
    with pytest.raises(CheckpointError, match="wrong shape"):
        build_difface(unet_config=other, estimator_config=TINY_EST).load_official(unet_file)


def test_load_official_without_estimator_warns(tmp_path, tiny_state):
    src = _tiny(state=tiny_state)
    torch.save(src.unet.state_dict(), tmp_path / "u.pth")
    with pytest.warns(UserWarning, match="estimator_checkpoint"):
        _tiny().load_official(tmp_path / "u.pth")


def test_plus_is_identity_at_init_and_conditions_the_unet(tiny_state):
    base, plus = _tiny(state=tiny_state), _tiny("difface+", state=tiny_state)
    assert plus.score_embedding.weight.shape == (10, 128)       # one 4*model_channels vector per level
    assert not plus.score_embedding.weight.detach().any()
    x = torch.rand(2, 3, 32, 32)
    ref = base(x, start_step=2, generator=torch.Generator().manual_seed(0))
    for score in (0, 9, 0.35, torch.tensor([2, 7])):
        out = plus(x, score=score, start_step=2, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
    with torch.no_grad():
        plus.score_embedding.weight[9].normal_(generator=torch.Generator().manual_seed(1))
    # level 9 now moves the time embedding, hence the output; level 0 is still the base model
    emb = plus.conditioned.net.time_embed
    t = torch.tensor([396, 396])
    e0 = emb(torch.zeros(2, 32))
    assert torch.equal(plus.run_net(x * 2 - 1, t, score=0), base.unet(x * 2 - 1, t))
    assert not torch.allclose(plus.run_net(x * 2 - 1, t, score=9), base.unet(x * 2 - 1, t))
    assert e0.shape == (2, 128)
    out9 = plus(x, score=9, start_step=2, generator=torch.Generator().manual_seed(0))
    assert (out9 - ref).abs().max() > 1e-5
    out0 = plus(x, score=0, start_step=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out0, ref, rtol=0, atol=0)


def test_finetune_losses_train_the_embedding(tiny_state):
    plus = _tiny("difface+", state=tiny_state).train()
    gt = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    losses = plus.finetune_losses(gt, gt, torch.tensor([9, 3]))
    assert set(losses) == {"eps_mse"} and losses["eps_mse"].dim() == 0 and losses["eps_mse"] > 0
    params = plus.trainable_parameters(train_base=False)
    assert len(params) == 1 and params[0] is plus.score_embedding.weight
    sum(losses.values()).backward()
    grad = plus.score_embedding.weight.grad
    assert grad[[3, 9]].abs().sum() > 0 and grad[[0, 1, 2, 4, 5, 6, 7, 8]].abs().sum() == 0
    assert all(p.grad is None for p in plus.estimator.parameters())
    # the base model trains its UNet with the same objective
    base = _tiny(state=tiny_state)
    assert len(base.trainable_parameters()) == len(list(base.unet.parameters()))


def test_save_pretrained_round_trip(tmp_path, tiny_state):
    plus = _tiny("difface+", state=tiny_state, start_step=2)
    with torch.no_grad():
        plus.score_embedding.weight.normal_(generator=torch.Generator().manual_seed(2))
    plus.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["adapter"] == "difface+" and config["options"]["start_step"] == 2
    assert config["options"]["unet_config"] == TINY_UNET
    loaded = adapters.create("difface+", checkpoint=tmp_path / "saved")
    x = torch.rand(1, 3, 32, 32)
    a = plus(x, score=9, generator=torch.Generator().manual_seed(0))
    b = loaded(x, score=9, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="difface\\+"):
        adapters.create("difface", checkpoint=tmp_path / "saved")


@pytest.mark.slow
def test_full_size_forward_shapes():
    """Released sizes at 512x512 (about a minute on 2 CPU cores)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 512, 512)
    with torch.no_grad():
        est = SwinIR().eval()(x)
        out = UNet().eval()(x * 2 - 1, torch.tensor([396]))
    assert est.shape == (1, 3, 512, 512) and out.shape == (1, 6, 512, 512)
    assert torch.isfinite(est).all() and torch.isfinite(out).all()


@pytest.mark.slow
def test_parity_with_upstream_code():
    """Against a local checkout of zsyOAOA/DifFace (5c9ab80) named by $DIFFACE_UPSTREAM (never vendored)."""
    import os
    import sys

    root = os.environ.get("DIFFACE_UPSTREAM")
    if not root or not Path(root, "models", "unet.py").is_file():
        pytest.skip("set DIFFACE_UPSTREAM to a checkout of github.com/zsyOAOA/DifFace")
    sys.path.insert(0, root)
    try:
        from models.script_util import create_gaussian_diffusion
        from models.swinir import SwinIR as UpSwinIR
        from models.unet import UNetModel
    finally:
        sys.path.remove(root)
    ours = build_difface(unet_config=TINY_UNET, estimator_config=dict(TINY_EST, num_feat=64))  # 64: fixed upstream
    ours.set_exact(True).eval()  # the exact path is the one held to upstream's numerics
    _randomise(ours)
    up_unet = UNetModel(in_channels=3, model_channels=32, out_channels=6, dropout=0, conv_resample=True, dims=2,
                        use_scale_shift_norm=True, **TINY_UNET).eval()
    up_unet.load_state_dict(ours.unet.state_dict())
    up_est = UpSwinIR(img_size=8, patch_size=1, in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                      mlp_ratio=2, sf=4, img_range=1.0, upsampler="nearest+conv", resi_connection="1conv",
                      unshuffle=True, unshuffle_scale=4).eval()
    up_est.load_state_dict(ours.estimator.state_dict())
    diffusion = create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="linear",
                                          rescale_learned_sigmas=True, timestep_respacing="ddim250")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.estimator(x), up_est(x), atol=1e-5, rtol=0)
        t = torch.tensor([396, 396])
        out = up_unet(x * 2 - 1, t)
        torch.testing.assert_close(ours.unet(x * 2 - 1, t), out, atol=1e-5, rtol=0)
        ref = diffusion.p_mean_variance(lambda *a: out, x * 2 - 1, torch.tensor([99, 99]), clip_denoised=True)
        got = ours.sampler.p_mean_variance(out, x * 2 - 1, 99)
        for key in ("mean", "variance", "log_variance", "pred_xstart"):
            torch.testing.assert_close(got[key], ref[key], atol=1e-6, rtol=0)
        assert list(diffusion.timestep_map) == ours.sampler.timestep_map.tolist()
        # whole pipeline, 3 steps, same seed (upstream draws from the global RNG)
        torch.manual_seed(7)
        est = up_est(x).clamp(0, 1)
        xt = diffusion.q_sample(est * 2 - 1, t=torch.tensor([3, 3]))
        sample = diffusion.ddim_sample_loop(up_unet, shape=xt.shape, noise=xt, start_timesteps=3,
                                            clip_denoised=True, eta=0.5)
    y = ours(x, start_step=3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(y, sample * 0.5 + 0.5, atol=1e-5, rtol=0)


def test_restore_cli_on_an_aligned_face(tmp_path, tiny_state, face_paths):
    """``iqprior restore FACE --model difface --checkpoint SAVED --aligned --out DIR`` writes a restored PNG."""
    from iqprior.cli import main
    from iqprior.io import read_image

    assert face_paths, "the bundled face samples (examples/data/faces) are missing"
    saved = _tiny(state=tiny_state, start_step=1).save_pretrained(tmp_path / "difface")
    out = tmp_path / "out"
    rc = main(["restore", str(face_paths[0]), "--model", "difface", "--checkpoint", str(saved), "--aligned",
               "--out", str(out)])
    assert rc == 0
    written = sorted(p for p in out.rglob("*.png"))
    assert written, f"nothing written under {out}"
    y = read_image(written[0])
    x = read_image(face_paths[0])
    assert y.shape[0] == 3 and torch.isfinite(y).all()
    assert tuple(y.shape[-2:]) in {(32, 32), tuple(x.shape[-2:])}  # the model's native size or the input's


def test_finetune_cli_trains_the_level_embedding(tmp_path, face_paths, tiny_state):
    """`iqprior finetune --model difface+`: the epsilon loss moves only the GT level's embedding."""
    from iqprior.cli import main

    start = _tiny("difface+", tiny_state)  # non-zero output convs, so gradients reach the time embedding
    start.save_pretrained(tmp_path / "start")
    rc = main(["finetune", "--model", "difface+", "--checkpoint", str(tmp_path / "start"),
               "--data", str(face_paths[0].parent), "--default-level", "7", "--size", "32", "--steps", "2",
               "--batch-size", "1", "--num-workers", "0", "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 0
    tuned = adapters.create("difface+", checkpoint=tmp_path / "run" / "final")
    delta = (tuned.score_embedding.weight - start.score_embedding.weight).abs().sum(dim=1)
    assert delta[7] > 0 and delta[[i for i in range(10) if i != 7]].sum() == 0
    assert all(torch.equal(a, b) for a, b in zip(tuned.unet.parameters(), start.unet.parameters()))
