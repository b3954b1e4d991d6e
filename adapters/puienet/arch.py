"""PUIE-Net network (Fu et al., "Uncertainty Inspired Underwater Image Enhancement", ECCV 2022).

A re-implementation of the released architecture of zhenqifu/PUIE-Net
(revision cba7557, ``PUIENet_MP.py`` / ``PUIENet_MC.py`` / ``utils.py``) with
the same ``state_dict`` keys, so that ``puie.pth`` loads strictly:

- ``decoder.*``: a conditional-VAE U-Net. A *prior* encoder sees the raw image
  (3 channels), a *posterior* encoder (training only) the raw image and the
  reference (6 channels). Each is 3 x (2-conv block, max-pool) + a residual
  block with squeeze-excitation; the decoder goes back up with bilinear
  (``align_corners=True``) upsampling and skip concatenations. At full
  resolution the 128-channel feature is summarised (spatial mean, spatial std)
  into two 20-d Gaussians; a latent drawn from them (or their means) gives a
  per-channel scale ``|conv_s(z_s)|`` and shift ``conv_u(z_u)`` applied to the
  instance-normalised feature, then two residual blocks and a 1x1 convolution
  give the RGB output.
- ``VGG16.loss_network.*``: VGG-16 ``features[:31]`` of the training-time
  perceptual loss. It is in the released file and used by
  :meth:`PUIENet.training_losses`, never at inference.

Inference modes (the paper's two): ``"mp"`` uses the prior means (maximum
probability, ``Test_MP.py``); ``"mc"`` averages ``samples`` (20) outputs with
latents drawn from the prior (Monte Carlo, ``Test_MC.py``). The features before
the latent modulation do not depend on the sample, so they are computed once
and only the tail is repeated; draws follow the official order (``u`` then
``s`` per sample) so that a shared seed gives the official samples.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LATENT = 20
CHANNELS = 64
VGG_MIN_SIDE = 32
# VGG-16 features[:31]: conv output channels, "M" = max-pool; every conv is followed by a ReLU.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class SqueezeExcite(nn.Module):
    """Channel gate: global mean -> 1x1 conv (C/16) -> LeakyReLU -> 1x1 conv (C) -> sigmoid."""

    def __init__(self, channels: int):
        super().__init__()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_double = nn.Sequential(
            nn.Conv2d(channels, channels // 16, 1), nn.LeakyReLU(),
            nn.Conv2d(channels // 16, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_double(self.global_pool(x))


class ResidualSE(nn.Module):
    """x + SE(conv3(LeakyReLU(conv3(x)))), reflection-padded convolutions."""

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.LeakyReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            SqueezeExcite(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DoubleConv(nn.Module):
    """Two reflection-padded 3x3 convolutions, each followed by LeakyReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.LeakyReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(cout, cout, 3), nn.LeakyReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Encoder(nn.Module):
    """Four scales: full, 1/2, 1/4 (double convs) and 1/8 (residual block)."""

    def __init__(self, cin: int):
        super().__init__()
        self.conv1 = DoubleConv(cin, CHANNELS)
        self.conv2 = DoubleConv(CHANNELS, CHANNELS)
        self.conv3 = DoubleConv(CHANNELS, CHANNELS)
        self.conv4 = ResidualSE(CHANNELS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x1 = self.conv1(x)
        x2 = self.conv2(F.max_pool2d(x1, 2))
        x3 = self.conv3(F.max_pool2d(x2, 2))
        x4 = self.conv4(F.max_pool2d(x3, 2))
        return x1, x2, x3, x4


class LatentHead(nn.Module):
    """Two diagonal Gaussians (``u``: from the spatial mean, ``s``: from the spatial std)."""

    def __init__(self, latent: int = LATENT):
        super().__init__()
        self.latent = latent
        self.u_conv_layer = nn.Conv2d(2 * CHANNELS, 2 * latent, 1)
        self.s_conv_layer = nn.Conv2d(2 * CHANNELS, 2 * latent, 1)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(u_mean, u_std, s_mean, s_std)``, each ``(B, latent)``."""
        mean = f.mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
        std = f.std(dim=2, keepdim=True).std(dim=3, keepdim=True)  # std over rows, then over columns
        u = self.u_conv_layer(mean).flatten(1)
        s = self.s_conv_layer(std).flatten(1)
        n = self.latent
        return u[:, :n], u[:, n:].exp(), s[:, :n], s[:, n:].exp()


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped as ``like``, drawn on the generator's device (a CPU generator works on GPU)."""
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _kl_diag(mu_q: torch.Tensor, sd_q: torch.Tensor, mu_p: torch.Tensor, sd_p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) of diagonal Gaussians summed over the latent dimension: ``(B,)``."""
    var_ratio = (sd_q / sd_p).pow(2)
    t = ((mu_q - mu_p) / sd_p).pow(2)
    return 0.5 * (var_ratio + t - 1 - var_ratio.log()).sum(dim=-1)


class Decoder(nn.Module):
    """The conditional-VAE U-Net (``decoder.*`` keys of ``puie.pth``)."""

    def __init__(self, latent: int = LATENT):
        super().__init__()
        c2 = 2 * CHANNELS
        self.pr_encoder = Encoder(3)
        self.po_encoder = Encoder(6)
        self.pr_conv = ResidualSE(CHANNELS)   # bottleneck of the prior branch (1/8 scale)
        self.po_conv = ResidualSE(CHANNELS)
        self.pr_UpConv3 = DoubleConv(c2, CHANNELS)
        self.pr_UpConv2 = DoubleConv(c2, CHANNELS)
        self.pr_UpConv1 = DoubleConv(c2, CHANNELS)
        self.po_UpConv3 = DoubleConv(c2, CHANNELS)
        self.po_UpConv2 = DoubleConv(c2, CHANNELS)
        self.out_conv = nn.Sequential(ResidualSE(CHANNELS), ResidualSE(CHANNELS), nn.Conv2d(CHANNELS, 3, 1))
        self.compute_z_pr = LatentHead(latent)
        self.compute_z_po = LatentHead(latent)
        self.conv_u = nn.Conv2d(latent, c2, 1)
        self.conv_s = nn.Conv2d(latent, c2, 1)

    def _features(self, x: torch.Tensor, posterior: bool) -> torch.Tensor:
        """Full-resolution 128-channel feature of the prior (or posterior) branch."""
        enc = self.po_encoder if posterior else self.pr_encoder
        conv4 = self.po_conv if posterior else self.pr_conv
        up3 = self.po_UpConv3 if posterior else self.pr_UpConv3
        up2 = self.po_UpConv2 if posterior else self.pr_UpConv2
        x1, x2, x3, x4 = enc(x)
        d = up3(torch.cat((x3, _up(conv4(x4))), dim=1))
        d = up2(torch.cat((x2, _up(d)), dim=1))
        return torch.cat((x1, _up(d)), dim=1)

    def _tail(self, f_norm: torch.Tensor, z_u: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
        shift = self.conv_u(z_u[..., None, None])
        scale = self.conv_s(z_s[..., None, None]).abs()
        return self.out_conv(self.pr_UpConv1(f_norm * scale + shift))

    def enhance(self, x: torch.Tensor, mode: str = "mp", samples: int = 20,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Inference: ``x`` (B,3,H,W) RGB in [0,1], H and W multiples of 8 -> (B,3,H,W)."""
        f = self._features(x, posterior=False)
        u_mu, u_sd, s_mu, s_sd = self.compute_z_pr(f)
        f_norm = F.instance_norm(f, eps=1e-5)
        if mode == "mp":
            return self._tail(f_norm, u_mu, s_mu)
        out = 0
        for _ in range(samples):
            eps_u, eps_s = _randn(u_mu, generator), _randn(s_mu, generator)  # official order: u, then s
            out = out + self._tail(f_norm, u_mu + eps_u * u_sd, s_mu + eps_s * s_sd) / samples
        return out

    def posterior_forward(self, x: torch.Tensor, target: torch.Tensor,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: output decoded with a posterior latent, and ``KL(post || prior)`` per image."""
        f_pr = self._features(x, posterior=False)
        f_po = self._features(torch.cat((x, target), dim=1), posterior=True)
        pr = self.compute_z_pr(f_pr)
        po_u_mu, po_u_sd, po_s_mu, po_s_sd = self.compute_z_po(f_po)
        z_u = po_u_mu + po_u_sd * _randn(po_u_mu, generator)
        z_s = po_s_mu + po_s_sd * _randn(po_s_mu, generator)
        out = self._tail(F.instance_norm(f_pr, eps=1e-5), z_u, z_s)
        kl = _kl_diag(po_u_mu, po_u_sd, pr[0], pr[1]) + _kl_diag(po_s_mu, po_s_sd, pr[2], pr[3])
        return out, kl


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers[:31])


class PerceptualVGG16(nn.Module):
    """The training-time perceptual loss: MSE between VGG-16 ``features[:31]`` (inputs in [0,1])."""

    def __init__(self):
        super().__init__()
        self.loss_network = _vgg16_features()
        self.loss_network.requires_grad_(False)

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if min(out.shape[-2:]) < VGG_MIN_SIDE:  # five 2x pools: smaller crops (never in training) are enlarged
            size = tuple(max(VGG_MIN_SIDE, s) for s in out.shape[-2:])
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            target = F.interpolate(target, size=size, mode="bilinear", align_corners=False)
        return F.mse_loss(self.loss_network(out), self.loss_network(target))


class PUIENet(nn.Module):
    """``decoder`` + ``VGG16`` with the keys of ``puie.pth`` (132 tensors)."""

    def __init__(self):
        super().__init__()
        self.decoder = Decoder()
        self.VGG16 = PerceptualVGG16()

    def forward(self, x: torch.Tensor, mode: str = "mp", samples: int = 20,
                generator: torch.Generator | None = None, target: torch.Tensor | None = None):
        """Enhance ``x``; with ``target`` (training), return ``(out, kl)`` of the posterior pass."""
        if target is not None:
            return self.decoder.posterior_forward(x, target, generator=generator)
        return self.decoder.enhance(x, mode=mode, samples=samples, generator=generator)

    def training_losses(self, out: torch.Tensor, target: torch.Tensor, kl: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official ELBO terms (``mynet.elbo``): MSE + VGG-16 perceptual MSE + KL (all weight 1)."""
        return {"mse": F.mse_loss(out, target), "perceptual": self.VGG16(out, target), "kl": kl.mean()}
