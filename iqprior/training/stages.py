"""The three IQPFR training stages as modules computing their losses (arXiv 2503.09294, §3.1–3.3, Eq. 14).

Each stage is an ``nn.Module`` holding everything its checkpoint must keep
(``net``, plus the discriminator in Stage I or the frozen Stage I encoder in
Stages II–III) and exposes ``losses(batch)`` -> dict of named scalar losses
whose sum the generator-side optimiser minimises.

- :class:`Stage1` (dual codebook learning): ``L1 + L_per + λ_adv·L_adv + L_cb``
  (Eqs. 3–6) on HQ images; the HQ+ codebook is routed per image by Eq. 2.
- :class:`Stage2` (quality-conditioned code prediction): ``L_feat + 0.5·L_index``
  (Eqs. 10, 11, 13); codebooks and decoder frozen; GT codes from the frozen
  Stage I encoder; the condition is the GT's level.
- :class:`Stage3` (quality optimisation): Stage II + ``0.1·L_quality`` with
  ``L_quality = -IQA(D(Z_f))`` through the straight-through soft lookup (see
  :mod:`iqprior.models.iqpfr.model`), or through the continuous latent.
"""
from __future__ import annotations

import copy
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.vq import feature_loss, index_loss
from ..models.iqpfr import IQPFR, DualCodebookVQGAN, PatchDiscriminator
from .config import TrainConfig


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2 - 1


def build_perceptual(kind: str) -> Optional[nn.Module]:
    """Eq. 4 with VGG19 features: basicsr's PerceptualLoss (MSE on conv1_2…conv5_4), inputs in [-1, 1].

    ``"vgg19"`` needs torchvision's ``vgg19-dcbb9e9d.pth`` in ``$TORCH_HOME/hub/checkpoints``;
    ``"vgg19_random"`` is the same network with random weights (timing and tests only).
    """
    if kind == "none":
        return None
    from ..basicsr_compat import import_basicsr

    layers = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    if kind == "vgg19_random":
        return _RandomVGGPerceptual(layers)
    from ..guarded import guarded_loads

    losses = import_basicsr("basicsr.losses.basic_loss")
    with guarded_loads():  # torchvision's vgg19 file is found via the weights registry and read safely
        return losses.PerceptualLoss(layers, vgg_type="vgg19", use_input_norm=True, range_norm=True,
                                     perceptual_weight=1.0, style_weight=0.0, criterion="l2")


class _RandomVGGPerceptual(nn.Module):
    def __init__(self, layers: dict[str, float]):
        super().__init__()
        import torchvision

        names = ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2",
                 "pool2", "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4",
                 "pool3", "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4",
                 "pool4", "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4"]
        self.features = torchvision.models.vgg19(weights=None).features[:len(names)].requires_grad_(False)
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # a tapped conv output must not be overwritten by the next ReLU
        self.taps = {names.index(k): w for k, w in layers.items()}

    def forward(self, x, gt):
        loss, a, b = 0.0, (x + 1) / 2, ((gt + 1) / 2).detach()
        for i, layer in enumerate(self.features):
            a, b = layer(a), layer(b)
            if i in self.taps:
                loss = loss + self.taps[i] * F.mse_loss(a, b)
        return loss, None


def gan_g_loss(logits_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator side of Eq. 5 (non-saturating ``-log D(x_rec)``) or hinge (``-D(x_rec)``)."""
    if kind == "hinge":
        return -logits_fake.mean()
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


def gan_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator side of Eq. 5 (``-log D(x_h) - log(1 - D(x_rec))``) or hinge."""
    if kind == "hinge":
        return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
    return (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))


class Stage1(nn.Module):
    """Dual codebook learning. ``net``: :class:`DualCodebookVQGAN`; ``disc``: :class:`PatchDiscriminator`."""

    stage = 1

    def __init__(self, config: TrainConfig, net: Optional[DualCodebookVQGAN] = None):
        super().__init__()
        t = config.train
        self.cfg = t
        self.net = net if net is not None else DualCodebookVQGAN(config.model)
        if t.vqgan_checkpoint:
            self.net.load_vqgan_checkpoint(t.vqgan_checkpoint)
        self.disc = PatchDiscriminator(3, t.disc_ndf, t.disc_layers)
        object.__setattr__(self, "perceptual", build_perceptual(t.perceptual))  # weights not checkpointed

    def trainable(self) -> nn.Module:
        return self.net

    def gan_active(self, step: int) -> bool:
        return self.cfg.gan_weight > 0 and step >= self.cfg.disc_start

    def losses(self, batch: dict, step: int, net: Optional[nn.Module] = None, disc: Optional[nn.Module] = None
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Generator-side losses and ``{"rec": x_rec, "gt": x_h}`` (both in [-1, 1])."""
        t, net, disc = self.cfg, net or self.net, disc or self.disc
        x = to_model_range(batch["gt"])
        rec, cb_loss, info = net(x, hq_plus=batch["hq_plus"])
        out = {"l1": t.pixel_weight * F.l1_loss(rec, x), "codebook": t.codebook_weight * cb_loss}
        if self.perceptual is not None and t.perceptual_weight > 0:
            self.perceptual.to(x.device)
            out["perceptual"] = t.perceptual_weight * self.perceptual(rec, x)[0]
        if self.gan_active(step):
            g = gan_g_loss(disc(rec), t.gan_type)
            w = self._adaptive_weight(out["l1"] + out.get("perceptual", 0.0), g) if t.adaptive_gan_weight else 1.0
            out["gan"] = t.gan_weight * w * g
        return out, {"rec": rec, "gt": x}

    def _adaptive_weight(self, rec_loss: torch.Tensor, g_loss: torch.Tensor) -> torch.Tensor:
        """VQGAN's ``||∇ rec|| / ||∇ gan||`` at the decoder's last layer, clamped to [0, 1e4], no gradient."""
        last = self.net.generator.blocks[-1].weight
        g1 = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
        g2 = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        return (g1.norm() / (g2.norm() + 1e-4)).clamp(0.0, 1e4).detach()

    def disc_loss(self, real: torch.Tensor, fake: torch.Tensor, disc: Optional[nn.Module] = None) -> torch.Tensor:
        disc = disc or self.disc
        return gan_d_loss(disc(real), disc(fake.detach()), self.cfg.gan_type)


class Stage2(nn.Module):
    """Quality-conditioned code prediction. ``net``: :class:`IQPFR`; ``hq_encoder``: frozen Stage I encoder."""

    stage = 2

    def __init__(self, config: TrainConfig, net: Optional[IQPFR] = None):
        super().__init__()
        self.cfg = config.train
        self.net = net if net is not None else IQPFR(config.model)
        if config.train.vqgan_checkpoint:  # no Stage I run: start from CodeFormer's VQGAN (HQ+ codebook untrained)
            self.net.load_vqgan_checkpoint(config.train.vqgan_checkpoint)
        self.hq_encoder = copy.deepcopy(self.net.encoder)
        self.freeze()

    def freeze(self) -> None:
        """Codebooks, decoder (and fusion) frozen; the teacher encoder frozen; the rest trainable
        (:meth:`IQPFR.stage2_parameters`, the position embedding included)."""
        self.net.requires_grad_(False)
        for p in self.net.stage2_parameters():
            p.requires_grad_(True)
        self.hq_encoder.requires_grad_(False)

    def sync_teacher(self) -> None:
        """Copy the current encoder into the frozen teacher (after loading Stage I weights)."""
        self.hq_encoder.load_state_dict(self.net.encoder.state_dict())

    def trainable(self) -> nn.Module:
        return self.net

    def train(self, mode: bool = True) -> Stage2:
        super().train(mode)
        self.hq_encoder.eval()
        return self

    @torch.no_grad()
    def targets(self, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        """GT codes ``c₁, c₂`` of the HQ image and the fused GT latent ``Z_g`` (Eq. 13)."""
        return self.net.code_targets(gt, encoder=self.hq_encoder)

    def losses(self, batch: dict, step: int, net: Optional[nn.Module] = None
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        t, net = self.cfg, net or self.net
        lq, gt = to_model_range(batch["lq"]), to_model_range(batch["gt"])
        tg = self.targets(gt)
        decode = self.stage == 3 and t.quality_weight > 0
        out = net(lq, score=batch["level"], decode=decode, differentiable=decode, latent=t.quality_latent)
        losses = {"feat": t.feat_weight * feature_loss(out.lq_feat, tg["z_g"]),
                  "index": t.index_weight * index_loss(out.logits, tg["indices"], out.logits_hq, tg["indices_hq"])}
        return losses, {"out": out, "gt": gt}


class Stage3(Stage2):
    """Stage II + ``λ₂·L_quality`` (Eq. 14), ``L_quality = -IQA(x_res)`` on the decoded output in [0, 1]."""

    stage = 3

    def __init__(self, config: TrainConfig, net: Optional[IQPFR] = None,
                 quality_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        super().__init__(config, net)
        if quality_fn is None and config.train.quality_weight > 0:
            quality_fn = build_quality_loss(config)
        object.__setattr__(self, "quality_fn", quality_fn)  # frozen IQA networks are not checkpointed

    def losses(self, batch: dict, step: int, net: Optional[nn.Module] = None):
        losses, extra = super().losses(batch, step, net)
        if self.cfg.quality_weight > 0:
            restored = (extra["out"].image + 1) / 2
            q = self.quality_fn(restored)
            losses["quality"] = self.cfg.quality_weight * (q.mean() if q.dim() else q)
        return losses, extra


def build_quality_loss(config: TrainConfig) -> nn.Module:
    """``iqprior.QualityLoss(create_scorer(members=train.quality_members, calibration=...))``."""
    import iqprior

    scorer = iqprior.create_scorer(members=list(config.train.quality_members),
                                   calibration=config.train.quality_calibration)
    return iqprior.QualityLoss(scorer)


STAGE_CLASSES = {1: Stage1, 2: Stage2, 3: Stage3}


def build_stage(config: TrainConfig, quality_fn: Optional[Callable] = None) -> nn.Module:
    if config.stage == 3:
        return Stage3(config, quality_fn=quality_fn)
    return STAGE_CLASSES[config.stage](config)
