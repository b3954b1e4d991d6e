"""The CodeFormer network (Codebook Lookup Transformer), re-implemented with the official keys.

Zhou, Chan, Li, Loy, "Towards Robust Blind Face Restoration with Codebook
Lookup Transformer", NeurIPS 2022 (github.com/sczhou/CodeFormer,
``basicsr/archs/codeformer_arch.py`` at b33cc7d). The ``state_dict`` keys and
shapes equal ``codeformer_manifest.json`` (515 entries, 94.1 M parameters) so
the released ``codeformer.pth`` (``params_ema``) loads strictly.

The VQGAN (encoder, codebook, generator) is the core's
:mod:`iqprior.models.vqgan` (IQPFR builds on the same network) and the
Transformer layer :mod:`iqprior.models.layers.transformer`; this module adds
what is CodeFormer's own: the configuration and the forward (the fusion blocks and
AdaIN are :mod:`iqprior.models.layers.fusion`, shared with the IQPFR / IQPIR family).

Forward (input in [-1, 1], ``(B, 3, S, S)`` with S = ``img_size``):

1. the VQGAN encoder gives ``lq_feat`` ``(B, 256, 16, 16)`` and keeps the
   features at the ``connect_list`` resolutions; ``lq_feat`` is the output of the
   weightless ``lq_feat`` module (an identity: where CodeFormer+ adds its level
   embedding, whatever the encoder's depth);
2. a 9-layer pre-norm Transformer (learned position embedding, GELU MLP)
   predicts logits over the 1024 codes per token;
3. top-1 lookup in the frozen codebook, optionally AdaIN-matched to the
   statistics of ``lq_feat`` (``adain=True``, as upstream's inference);
4. the VQGAN generator decodes; with ``w > 0`` the controllable feature
   transformation blocks add ``w * (dec * scale + shift)`` at 32/64/128/256.

Returns ``(out, logits, lq_feat)`` like upstream (``out`` in about [-1, 1]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from iqprior.models.layers.fusion import FuseSFTBlock, adaptive_instance_norm
from iqprior.models.layers.transformer import TransformerSALayer
from iqprior.models.vqgan import Encoder, Generator, VectorQuantizer, VQGANConfig

__all__ = ["CodeFormerConfig", "CodeFormer", "FuseSFTBlock", "adaptive_instance_norm"]


@dataclass(frozen=True)
class CodeFormerConfig(VQGANConfig):
    """Constructor arguments of :class:`CodeFormer`; defaults = the released ``codeformer.pth``.

    The VQGAN geometry is :class:`iqprior.models.vqgan.VQGANConfig`'s (inherited
    fields; ``vqgan`` is that part alone). A tiny test configuration::

        CodeFormerConfig(img_size=64, nf=8, ch_mult=(1, 2, 2, 4), attn_resolutions=(8,), emb_dim=16,
                         codebook_size=32, dim_embd=32, n_head=2, n_layers=2, connect_list=("16", "32"))
    """

    config_name = "CodeFormer config"

    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    connect_list: tuple[str, ...] = ("32", "64", "128", "256")

    def __post_init__(self) -> None:
        super().__post_init__()  # validates the VQGAN part
        object.__setattr__(self, "connect_list", tuple(str(int(s)) for s in self.connect_list))
        if self.dim_embd % self.n_head:
            raise ValueError(f"dim_embd {self.dim_embd} must be divisible by n_head {self.n_head}")
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")
        sizes = {str(self.img_size // 2 ** i) for i in range(len(self.ch_mult))}
        bad = [s for s in self.connect_list if s not in sizes]
        if bad:
            raise ValueError(f"connect_list entries {bad} are not feature sizes of this VQGAN "
                             f"(choose from {sorted(sizes, key=int)})")

    @classmethod
    def from_options(cls, config: CodeFormerConfig | Mapping[str, Any] | None) -> CodeFormerConfig:
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a CodeFormerConfig or a dict, got {type(config).__name__}")
        return cls.from_dict(config)


class CodeFormer(nn.Module):
    """CodeFormer with the official submodule names (``encoder``, ``quantize``, ``generator``,
    ``position_emb``, ``feat_emb``, ``ft_layers``, ``idx_pred_layer``, ``fuse_convs_dict``), and
    ``lq_feat``, an identity on the encoder's output (no weights: the keys are upstream's)."""

    def __init__(self, config: Optional[CodeFormerConfig] = None):
        super().__init__()
        cfg = config if config is not None else CodeFormerConfig()
        if not isinstance(cfg, CodeFormerConfig):
            raise TypeError(f"config must be a CodeFormerConfig, got {type(cfg).__name__}")
        self.config = cfg
        vq = cfg.vqgan
        n_tokens = vq.latent_size ** 2
        # parameter order as upstream: own parameter first, then encoder / quantize / generator, ...
        self.position_emb = nn.Parameter(torch.zeros(n_tokens, cfg.dim_embd))
        self.encoder = Encoder(vq)
        self.lq_feat = nn.Identity()  # lq_feat = Z_l, the Transformer's input: the "+" injection point
        self.quantize = VectorQuantizer(vq.codebook_size, vq.emb_dim, vq.beta)
        self.generator = Generator(vq)
        self.feat_emb = nn.Linear(vq.emb_dim, cfg.dim_embd)
        # need_weights=True as upstream (upstream_attention): the explicit-softmax path, bit-identical logits
        self.ft_layers = nn.Sequential(*[TransformerSALayer(cfg.dim_embd, cfg.n_head, cfg.dim_embd * 2,
                                                            upstream_attention=True) for _ in range(cfg.n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(cfg.dim_embd),
                                            nn.Linear(cfg.dim_embd, vq.codebook_size, bias=False))
        sizes = [vq.img_size // 2 ** i for i in range(len(vq.ch_mult))]
        self.channels = {str(s): vq.nf * m for s, m in zip(sizes, vq.ch_mult)}
        # upstream's tables ({'512': 2, ..., '16': 18} and {'16': 6, '32': 9, ..., '512': 21} released):
        # fuse after the last ResBlock of an encoder stage; in the generator after the first ResBlock
        # of a stage, except at the latent size (after its last ResBlock, before attention)
        self.fuse_encoder_block = {str(s): idx[-1] for s, idx in self.encoder.stage_blocks.items()}
        self.fuse_generator_block = {str(s): (idx[-1] if s == vq.latent_size else idx[0])
                                     for s, idx in self.generator.stage_blocks.items()}
        self.fuse_convs_dict = nn.ModuleDict(
            {s: FuseSFTBlock(self.channels[s], self.channels[s]) for s in cfg.connect_list})

    def forward(self, x: torch.Tensor, w: float = 0.0, detach_16: bool = True, code_only: bool = False,
                adain: bool = False):
        """``x`` ``(B, 3, S, S)`` in [-1, 1]. Returns ``(out, logits, lq_feat)``; with
        ``code_only`` returns ``(logits, lq_feat)`` (stage-II training). ``logits``: ``(B, L*L, N)``."""
        vq = self.config.vqgan
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (vq.img_size, vq.img_size):
            raise ValueError(f"CodeFormer expects (B, 3, {vq.img_size}, {vq.img_size}) input, got "
                             f"{tuple(x.shape)}; resize aligned faces to {vq.img_size}x{vq.img_size}")
        keep = {self.fuse_encoder_block[s] for s in self.config.connect_list}
        enc_feats: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in keep:
                enc_feats[str(int(x.shape[-1]))] = x.clone()  # int(): a traced size is a tensor
        lq_feat = self.lq_feat(x)
        b = x.shape[0]

        pos = self.position_emb.unsqueeze(1).repeat(1, b, 1)               # (L, B, E)
        tokens = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))        # (L, B, E)
        for layer in self.ft_layers:
            tokens = layer(tokens, query_pos=pos)
        logits = self.idx_pred_layer(tokens).permute(1, 0, 2)             # (B, L, N)
        if code_only:
            return logits, lq_feat

        top_idx = torch.topk(F.softmax(logits, dim=2), 1, dim=2)[1]
        quant = self.quantize.get_codebook_feat(top_idx, (b, vq.latent_size, vq.latent_size, vq.emb_dim))
        if detach_16:
            quant = quant.detach()
        if adain:
            quant = adaptive_instance_norm(quant, lq_feat)

        fuse_at = {self.fuse_generator_block[s] for s in self.config.connect_list}
        x = quant
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if i in fuse_at and (isinstance(w, torch.Tensor) or w > 0):  # a tensor w (export input) always fuses
                size = str(int(x.shape[-1]))
                x = self.fuse_convs_dict[size](enc_feats[size].detach(), x, w)
        return x, logits, lq_feat
