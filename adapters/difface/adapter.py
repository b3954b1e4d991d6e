"""DifFace and DifFace+ adapters: diffusion face restoration with a diffused estimator.

DifFace (Yue & Loy, "DifFace: Blind Face Restoration with Diffused Error
Contraction", TPAMI 2024; github.com/zsyOAOA/DifFace, revision 5c9ab80,
``sampler.py`` / ``inference_difface.py``) restores an aligned 512x512 face in
two stages: a SwinIR "diffused estimator" removes most of the degradation, its
output is diffused with ``q_sample`` to an intermediate step (respaced step 100
of "ddim250", noise level of t = 400), and a diffusion UNet trained on FFHQ
runs DDIM (eta 0.5) from there to t = 0. Upstream I/O: the estimator reads and
writes [0, 1] (its output clamped to [0, 1] before diffusion), the diffusion
works in [-1, 1]; other sizes are resized bicubic (antialias) to 512 and back.
Unlike upstream, the adapter's output is not clamped (library convention).

DifFace+ (IQPFR, arXiv 2503.09294, Tables 1-2) adds the quality-level
embedding. **Placement: added to the UNet's timestep embedding** (the output
of ``time_embed``, a ``4 * model_channels`` = 128-vector per image). Why there:

- the paper's condition says "make the output look like a level-s face"; in
  DifFace the component that decides what the output looks like is the
  diffusion prior (the estimator only removes degradation and its output is
  largely re-noised), so the prior is what must be conditioned;
- guided-diffusion conditions its UNet on a class exactly this way
  (``emb = time_embed(t) + label_emb(y)``); the sum feeds the scale-shift
  norm of every residual block, so one 128-vector steers all resolutions and
  all denoising steps, with the weights and the training objective unchanged;
- zero-initialised, it leaves ``emb`` and hence the output unchanged.

``finetune_losses`` is then the UNet's own objective, the epsilon MSE on
``q_sample(gt, t)`` with ``t ~ U{0..999}`` and the GT's level as condition
(the hybrid loss's VB term trains only the variance channels, which the DDIM
sampler does not use, so it is left out). ``lq`` is not used: the UNet is an
unconditional prior of HQ faces; the frozen estimator is not fine-tuned.

Fast path (default; ``exact=True`` for upstream's numerics): the SwinIR
estimator folds its windows into a contiguous 4-D ``(B, nW·heads, N, dim)``
batch so SDPA takes the fused kernel instead of the math fallback its 5-D
tensors get, the UNet's attention gets contiguous 4-D q/k/v likewise, and both
networks run channels-last. Measured at 512² on CPU (docs/experiments/speed.md): the
window fold is the estimator's gain, channels-last the UNet's (one call = one of
the 100 steps, so ``--compile`` pays off most here); outputs within 1e-4.

``model.net`` is the UNet (``iddpm_ffhq512_ema500000.pth``, what
``load_official`` loads and what the "+" embedding conditions);
``model.unet`` is the same module; ``model.estimator`` is the SwinIR
(``swinir_restoration512_L1.pth``, option ``estimator_checkpoint``).
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional

import torch
import torch.nn.functional as F

from iqprior.checkpoint import load_strict, match_prefix, prefer, read_official_checkpoint
from iqprior.config import check_options
from iqprior.fastpath import check_precision
from iqprior.io import check_image_batch

from ..base import Adapter
from ..plus import plus_builder
from ..registry import builder
from .sampler import DifFaceSampler, SamplerConfig
from .swinir import SwinIR, SwinIRConfig
from .unet import UNet, UNetConfig

__all__ = ["DifFace", "build_difface", "build_difface_plus"]

ESTIMATOR_WRAPPER_KEYS = prefer("state_dict")  # the SwinIR estimator's file keeps its weights under state_dict


class DifFace(Adapter):
    """``y = model(x, score=None)``: x ``(B, 3, H, W)`` RGB in [0, 1]; y the same, not clamped.

    Options (all optional; saved in ``config.json`` except the run-time ones):
        start_step: respaced start step, 1..249 (default 100); fewer steps = faster, closer to the estimate.
        generator: ``torch.Generator`` for the diffusion noise (run-time only, not saved).
        seed: int; without a generator, each call draws its noise from a CPU generator seeded with it
            (reproducible runs from the command line: ``--option seed=12345``, upstream's default seed).
        eta: DDIM eta (default 0.5).
        precision: ``"fp32"`` (default), ``"fp16"`` or ``"bf16"``: autocast of both networks
            (:mod:`iqprior.fastpath`); the sampler's arithmetic stays float32.
        exact: run the exact path instead of the fast one (``adapters.create`` option, run-time).
        unet_config, estimator_config: dicts laid over the released configurations (tiny test models).
        estimator_checkpoint: path of ``swinir_restoration512_L1.pth`` (run-time only, not saved).
    """

    def __init__(self, name: str = "difface", *, start_step: int = 100, eta: float = 0.5,
                 precision: str = "fp32", generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                 unet_config: Optional[dict[str, Any]] = None, estimator_config: Optional[dict[str, Any]] = None,
                 estimator_checkpoint: Optional[str | os.PathLike] = None):
        options: dict[str, Any] = {"start_step": start_step, "eta": eta, "precision": precision}
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"seed must be an int, got {seed!r}")
            options["seed"] = seed
        if unet_config:
            options["unet_config"] = dict(unet_config)
        if estimator_config:
            options["estimator_config"] = dict(estimator_config)
        super().__init__(name, options)
        check_precision(precision)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        ucfg = UNetConfig.from_dict(unet_config)
        ecfg = SwinIRConfig.from_dict(estimator_config)
        if ucfg.image_size != ecfg.img_size * ecfg.scale:
            raise ValueError(f"the UNet works at {ucfg.image_size}px but the estimator's token grid "
                             f"img_size * scale = {ecfg.img_size * ecfg.scale}px; make them agree")
        self.net = UNet(ucfg)
        self.estimator = SwinIR(ecfg)
        self.sampler = DifFaceSampler(SamplerConfig(eta=float(eta), start_step=start_step))
        self.sampler.timesteps(start_step)  # validates start_step now
        self.native_size = ucfg.image_size
        self.precision = precision
        self.generator = generator
        self.estimator_source: Optional[str] = None
        if estimator_checkpoint is not None:
            self.load_estimator(estimator_checkpoint)

    def set_precision(self, precision: str) -> DifFace:
        """As :meth:`Adapter.set_precision`; kept in the options (DifFace saves its precision)."""
        super().set_precision(precision)
        self.options["precision"] = precision
        return self

    def compile_for_inference(self, **kwargs: Any) -> DifFace:
        """``torch.compile`` the UNet (100 calls per image) and the estimator in place."""
        self.net.compile(**kwargs)
        self.estimator.compile(**kwargs)
        return self

    def condition_shape(self) -> tuple[int]:
        """The UNet's timestep embedding: ``(4 * model_channels,)`` per image (512 released)."""
        return (4 * self.net.config.model_channels,)

    @property
    def unet(self) -> UNet:
        """The diffusion UNet (same module as ``net``): ``unet(x_t, t)``, t on the original 0..999 scale."""
        return self.net

    # -- official files -------------------------------------------------------------------
    def load_official(self, path: str | os.PathLike) -> DifFace:
        """Load ``iddpm_ffhq512_ema500000.pth`` (raw dict, with or without ``module.``) into the UNet."""
        super().load_official(path)
        if self.estimator_source is None:
            warnings.warn("DifFace: UNet weights loaded but no estimator_checkpoint was given; the SwinIR "
                          "estimator keeps random weights (pass estimator_checkpoint=swinir_restoration512_L1.pth)",
                          stacklevel=2)
        return self

    def load_estimator(self, path: str | os.PathLike) -> DifFace:
        """Load ``swinir_restoration512_L1.pth`` (``state_dict`` wrapper, ``module.`` prefix or not), strictly."""
        state = read_official_checkpoint(path, ESTIMATOR_WRAPPER_KEYS)
        own = self.estimator.state_dict()
        state = match_prefix(state, own.keys(), self.official_prefixes)
        # the shifted-window masks / position indices are derived constants: accept files without them
        for key, value in own.items():
            if key not in state and key.endswith(("attn_mask", "relative_position_index")):
                state[key] = value
        load_strict(self.estimator, state, source=str(path))
        self.estimator_source = str(path)
        return self

    # -- inference ------------------------------------------------------------------------
    def _to_native(self, x: torch.Tensor) -> torch.Tensor:
        n = self.native_size
        if tuple(x.shape[-2:]) == (n, n):
            return x
        return F.interpolate(x, size=(n, n), mode="bicubic", antialias=True, align_corners=False)

    @torch.no_grad()
    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """The diffused estimator's output at the native size, clamped to [0, 1] (as upstream)."""
        check_image_batch(x)
        x = self.prepare_input(self._to_native(x.float()))
        with self.autocast(x.device):
            est = self.estimator(x)
        return est.float().clamp(0.0, 1.0)  # layout as the exact path's (sampler noise follows it)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, score=None, start_step: Optional[int] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Restore ``x``; ``start_step`` / ``generator`` override the options for this call.

        Returns ``(B, 3, H, W)`` in about [0, 1] at ``x``'s size, not clamped.
        ``score`` conditions a "+" model (default level 9); a base model ignores it.
        """
        check_image_batch(x)
        h, w = x.shape[-2:]
        est = self.estimate(x)
        generator = generator if generator is not None else self.generator
        if generator is None and self.options.get("seed") is not None:
            generator = torch.Generator().manual_seed(self.options["seed"])
        start = self.options["start_step"] if start_step is None else start_step

        def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.run_net(x_t, t, score=score).float()  # autocast and fast path inside run_net

        sample = self.sampler.sample(model_fn, est * 2 - 1, start_step=start, generator=generator)
        y = (sample + 1) / 2
        if tuple(y.shape[-2:]) != (h, w):
            y = F.interpolate(y, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        return y.to(x.dtype)

    # -- fine-tuning ("+") ----------------------------------------------------------------
    def finetune_losses(self, lq: torch.Tensor, gt: torch.Tensor, score) -> dict[str, torch.Tensor]:
        """DifFace's diffusion objective on the GT: ``{"eps_mse": mean((eps - unet(x_t, t)[:, :3])^2)}``.

        ``gt``: ``(B, 3, H, W)`` in [0, 1] (resized to the native size);
        ``score``: the GT's level(s) for a "+" model. ``lq`` is unused (see the module docstring).
        """
        check_image_batch(gt, "gt")
        x0 = self._to_native(gt.float()) * 2 - 1
        x_t, t, noise = self.sampler.training_noise(x0)
        out = self.run_net(x_t, t, score=score)
        eps = out.float()[:, : x0.shape[1]]
        return {"eps_mse": F.mse_loss(eps, noise)}


OPTIONS = ("start_step", "eta", "precision", "generator", "seed", "unet_config", "estimator_config", "estimator_checkpoint")


def _make(name: str, **options: Any) -> DifFace:
    check_options(options, OPTIONS, "DifFace option(s)")
    return DifFace(name, **options)


@builder("difface")
def build_difface(**options: Any) -> DifFace:
    """DifFace with random weights (the registry then loads ``iddpm_ffhq512_ema500000.pth``)."""
    return _make("difface", **options)


build_difface_plus = plus_builder("difface+", _make, doc="""DifFace+: DifFace with a zero-initialised level embedding
    added to the UNet's timestep embedding (``time_embed``'s output); the options of :func:`build_difface`.""")
