"""DifFace's respaced DDIM sampler: a weightless scheduler object (diffusers style).

DifFace (Yue & Loy, TPAMI 2024; github.com/zsyOAOA/DifFace, revision 5c9ab80:
``models/gaussian_diffusion.py``, ``models/respace.py``, ``sampler.py``) restores
a face by diffusing the estimator's output to an intermediate step and running
the reverse diffusion from there. Facts from upstream:

- training process: 1000 linear betas from 1e-4 to 0.02 (float64), epsilon
  prediction, learned-range variance (the UNet's second 3 channels ``v``
  interpolate ``log beta_t`` and the clipped log posterior variance);
- inference respaced to "ddim250": original steps 0, 4, ..., 996, with the
  respaced process's own betas ``1 - abar_i / abar_{i-1}``; the UNet gets the
  original timestep (``timestep_map``), unscaled;
- start: ``x = q_sample(2 * estimate - 1, respaced step 100)`` (noise level of
  original t = 400), then DDIM steps at respaced 99 .. 0 (original 396 .. 0)
  with eta = 0.5; ``x0`` predictions clipped to [-1, 1]; the DDIM update uses
  the network's raw epsilon (not one re-derived from the clipped ``x0``).

All coefficients are computed in float64 and used in float32, as upstream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from iqprior.config import ConfigMixin

__all__ = ["SamplerConfig", "DifFaceSampler", "space_timesteps"]

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SamplerConfig(ConfigMixin):
    """Sampler settings; the defaults are DifFace's face-restoration inference."""

    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    respacing: str = "ddim250"
    eta: float = 0.5
    clip_denoised: bool = True
    start_step: int = 100   # respaced step the estimate is diffused to

    config_name = "sampler"


def space_timesteps(num_timesteps: int, spacing: str) -> list[int]:
    """Original steps kept by a respacing: ``"ddimN"`` (fixed integer stride) or ``"N[,M...]"`` (sections)."""
    spacing = str(spacing).strip()
    if spacing.startswith("ddim"):
        want = int(spacing[4:])
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == want:
                return list(range(0, num_timesteps, stride))
        raise ValueError(f"cannot take exactly {want} of {num_timesteps} steps with an integer stride")
    try:
        counts = [int(c) for c in spacing.split(",")] if spacing else [num_timesteps]
    except ValueError:
        raise ValueError(f"respacing must be 'ddimN' or comma-separated step counts, got {spacing!r}") from None
    size_per, extra = divmod(num_timesteps, len(counts))
    steps, start = [], 0
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if not 1 <= count <= size:
            raise ValueError(f"cannot take {count} steps from a section of {size}")
        stride = (size - 1) / (count - 1) if count > 1 else 1
        steps += [start + round(j * stride) for j in range(count)]
        start += size
    return sorted(set(steps))


def randn_like(x: torch.Tensor, generator: Optional[torch.Generator] = None,
               dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Standard normal noise like ``x`` (same strides, as ``torch.randn_like`` upstream) from ``generator``.

    A generator on another device (e.g. CPU generator, CUDA tensor) draws there and is moved over.
    """
    dtype = dtype or x.dtype
    if generator is None or generator.device == x.device:
        return torch.empty_like(x, dtype=dtype).normal_(generator=generator)
    return torch.empty_like(x, dtype=dtype, device=generator.device).normal_(generator=generator).to(x.device)


class DifFaceSampler:
    """Respaced Gaussian diffusion with DDIM sampling from an intermediate step.

    Step indices ``i`` are on the respaced scale (0..249 for "ddim250");
    ``timestep_map[i]`` is the original timestep handed to the UNet.
    """

    def __init__(self, config: Optional[SamplerConfig] = None, **overrides: Any):
        if config is not None and overrides:
            raise TypeError("give either a SamplerConfig or keyword overrides, not both")
        cfg = config or SamplerConfig.from_dict(overrides)
        if not cfg.eta >= 0.0:
            raise ValueError(f"eta must be >= 0, got {cfg.eta}")
        self.config = cfg
        f64 = torch.float64
        self.train_betas = torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps, dtype=f64)
        self.train_alphas_cumprod = torch.cumprod(1.0 - self.train_betas, 0)
        self.timestep_map = torch.tensor(space_timesteps(cfg.num_train_timesteps, cfg.respacing), dtype=torch.long)
        abar = self.train_alphas_cumprod[self.timestep_map]
        abar_prev = torch.cat([torch.ones(1, dtype=f64), abar[:-1]])
        betas = 1.0 - abar / abar_prev
        self.betas, self.alphas_cumprod, self.alphas_cumprod_prev = betas, abar, abar_prev
        self.sqrt_alphas_cumprod = abar.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - abar).sqrt()
        self.sqrt_recip_alphas_cumprod = (1.0 / abar).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / abar - 1.0).sqrt()
        self.posterior_variance = betas * (1.0 - abar_prev) / (1.0 - abar)
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]))
        self.posterior_mean_coef1 = betas * abar_prev.sqrt() / (1.0 - abar)
        self.posterior_mean_coef2 = (1.0 - abar_prev) * (1.0 - betas).sqrt() / (1.0 - abar)
        ratio = (1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev)
        self.ddim_sigma = cfg.eta * ratio.clamp(min=0).sqrt()

    @property
    def num_steps(self) -> int:
        """Number of respaced steps (250)."""
        return int(self.timestep_map.numel())

    def timesteps(self, start_step: Optional[int] = None) -> torch.Tensor:
        """Original timesteps of the denoising steps from ``start_step`` (396, 392, ..., 0 by default)."""
        start = self._check_start(start_step)
        return self.timestep_map[:start].flip(0)

    def _check_start(self, start_step: Optional[int]) -> int:
        start = self.config.start_step if start_step is None else start_step
        if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < self.num_steps:
            raise ValueError(f"start_step must be an int in 1..{self.num_steps - 1} (respaced scale; DifFace uses "
                             f"100), got {start!r}")
        return start

    @staticmethod
    def _at(arr: torch.Tensor, step: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``arr[step]`` as float32 (upstream's ``_extract_into_tensor``), shaped (B, 1, 1, 1)."""
        out = arr.to(step.device)[step].float()
        return out.view(-1, *([1] * (like.dim() - 1))).to(like.device)

    def _steps(self, step: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
        s = torch.as_tensor(step, dtype=torch.long, device=device)
        return s.expand(batch) if s.dim() == 0 else s

    # -- forward process ------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, step: int | torch.Tensor, noise: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Diffuse ``x0`` (in [-1, 1]) to respaced ``step``: ``sqrt(abar) x0 + sqrt(1 - abar) noise``."""
        s = self._steps(step, x0.shape[0], x0.device)
        if noise is None:
            noise = randn_like(x0, generator)
        return self._at(self.sqrt_alphas_cumprod, s, x0) * x0 + self._at(self.sqrt_one_minus_alphas_cumprod, s, x0) * noise

    # -- reverse process ------------------------------------------------------------------
    def p_mean_variance(self, model_output: torch.Tensor, x_t: torch.Tensor, step: int | torch.Tensor
                        ) -> dict[str, torch.Tensor]:
        """Split the UNet output at respaced ``step``: epsilon, clipped x0, posterior mean, learned variance.

        Returns a dict with ``eps``, ``pred_xstart``, ``mean``, ``variance``,
        ``log_variance`` (all of ``x_t``'s shape, float32).
        """
        c = x_t.shape[1]
        if model_output.shape[1] != 2 * c:
            raise ValueError(f"model output has {model_output.shape[1]} channels; expected {2 * c} "
                             "(epsilon + learned-range variance)")
        s = self._steps(step, x_t.shape[0], x_t.device)
        x_t = x_t.float()
        eps, v = model_output.float().split(c, dim=1)
        min_log = self._at(self.posterior_log_variance_clipped, s, x_t)
        max_log = self._at(torch.log(self.betas), s, x_t)
        frac = (v + 1) / 2
        log_variance = frac * max_log + (1 - frac) * min_log
        x0 = self._at(self.sqrt_recip_alphas_cumprod, s, x_t) * x_t - self._at(self.sqrt_recipm1_alphas_cumprod, s, x_t) * eps
        if self.config.clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean = self._at(self.posterior_mean_coef1, s, x_t) * x0 + self._at(self.posterior_mean_coef2, s, x_t) * x_t
        return {"eps": eps, "pred_xstart": x0, "mean": mean, "variance": log_variance.exp(),
                "log_variance": log_variance}

    def ddim_step(self, model_output: torch.Tensor, x_t: torch.Tensor, step: int | torch.Tensor,
                  noise: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update (DDIM Eq. 12) from respaced ``step`` to ``step - 1``; returns (x_prev, x0)."""
        s = self._steps(step, x_t.shape[0], x_t.device)
        out = self.p_mean_variance(model_output, x_t, s)
        abar_prev = self._at(self.alphas_cumprod_prev, s, x_t)
        sigma = self._at(self.ddim_sigma, s, x_t)
        mean = out["pred_xstart"] * abar_prev.sqrt() + (1 - abar_prev - sigma ** 2).sqrt() * out["eps"]
        if bool((s != 0).any()) and self.config.eta > 0:
            if noise is None:
                noise = randn_like(x_t, generator, torch.float32)
            mean = mean + (s != 0).float().view(-1, *([1] * (x_t.dim() - 1))) * sigma * noise
        return mean, out["pred_xstart"]

    @torch.no_grad()
    def sample(self, model_fn: ModelFn, estimate: torch.Tensor, start_step: Optional[int] = None,
               generator: Optional[torch.Generator] = None,
               callback: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
        """Restore from the estimator's output.

        Args:
            model_fn: ``model_fn(x_t, t) -> (B, 6, H, W)`` with ``t`` the original
                timesteps (the UNet, possibly conditioned / under autocast).
            estimate: ``(B, 3, H, W)`` estimator output in [-1, 1].
            start_step: respaced start step (default ``config.start_step``, 100).
            generator: for the initial diffusion noise and the DDIM noise.
            callback: called as ``callback(i, x)`` after each step ``i``.

        Returns:
            ``(B, 3, H, W)`` float32 sample in [-1, 1] (not clamped).
        """
        start = self._check_start(start_step)
        x = self.q_sample(estimate.float(), start, generator=generator)
        for i in range(start - 1, -1, -1):
            s = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
            out = model_fn(x, self.timestep_map.to(x.device)[s])
            x, _ = self.ddim_step(out, x, s, generator=generator)
            if callback is not None:
                callback(i, x)
        return x

    # -- training -------------------------------------------------------------------------
    def training_noise(self, x0: torch.Tensor, generator: Optional[torch.Generator] = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw ``t ~ U{0..T-1}`` (original scale) and noise; returns ``(x_t, t, noise)`` for the eps loss."""
        b = x0.shape[0]
        gen_device = generator.device if generator is not None else x0.device
        t = torch.randint(0, self.config.num_train_timesteps, (b,), generator=generator, device=gen_device)
        t = t.to(x0.device)
        noise = randn_like(x0, generator)
        abar = self.train_alphas_cumprod.to(x0.device)[t].float().view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise, t, noise

    def __repr__(self) -> str:
        return f"DifFaceSampler({self.config})"
