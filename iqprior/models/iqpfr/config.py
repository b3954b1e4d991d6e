"""Constructor arguments of the IQPFR networks (arXiv 2503.09294, §3, App. 6.1.1–6.1.2, 6.2.2–6.2.4).

One frozen dataclass describes the dual-codebook VQGAN (Stage I) and the
score-conditioned Transformer on top of it (Stages II–III); the Stage I
network uses only the VQGAN fields, so a Stage I checkpoint loads into the
Stage II network. Defaults are the paper's: CodeFormer's VQGAN geometry (512²
-> 16×16×256, nf 64, ch_mult 1,2,2,4,4,8, attention at 16), a common codebook
of 1024 codes and an HQ+ codebook of 1024 (Table 7), α = 1, β = 0.25,
S_thr = 0.9, a 9-layer Transformer (CodeFormer's width: 512, 8 heads, MLP
1024) and 10 quality levels added to ``Z_l`` (Eq. 7).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..vqgan import VQGANConfig

FUSIONS = ("add", "attention")          # Eq. 2 / Eq. 8 addition, or App. 6.2.3 cross-attention
CONDITIONS = ("add", "adain", "none")   # Eq. 7, App. 6.2.4 (adaptive norm in the Transformer), or none
HQ_QUANTIZE = ("latent", "residual")    # what the HQ+ codebook quantises (see DualCodebookVQGAN)
HEADS = ("split", "joint")              # two prediction heads, or the released code's one interleaved head


@dataclass(frozen=True)
class IQPFRConfig(VQGANConfig):
    """Shapes and hyper-parameters of :class:`DualCodebookVQGAN` and :class:`IQPFR`.

    VQGAN (inherited from :class:`iqprior.models.vqgan.VQGANConfig`): ``img_size,
    nf, ch_mult, res_blocks, attn_resolutions, emb_dim, codebook_size`` (common
    codebook), ``beta`` (Eq. 6), ``norm_groups``. Dual codebook: ``hq_codebook_size``
    (HQ+ codebook, N in Table 7), ``alpha`` (Eqs. 2, 8),
    ``hq_threshold`` (S_thr), ``fusion`` (``"add"`` or ``"attention"``),
    ``fusion_heads``, ``hq_quantize`` (``"latent"``: the HQ+ codebook quantises
    ``E(x_h)`` as §3.1 says; ``"residual"``: it quantises ``E(x_h) - Z_q¹``).

    Transformer: ``dim_embd, n_head, n_layers, dim_mlp``, ``levels`` (quality
    levels), ``condition`` (``"add"`` = Eq. 7, ``"adain"`` = App. 6.2.4,
    ``"none"`` = unconditioned ablation, Table 4 (a)).

    The authors' released form (IQPIR; :data:`IQPIR` below) adds, all off by default:
    ``head`` (``"joint"``: one LayerNorm + linear head of ``2·K`` outputs whose
    logits are read as ``(K, 2)``, index 0 the HQ+ codebook, 1 the common one;
    needs ``hq_codebook_size == codebook_size``), ``connect_list`` (feature sizes
    of CodeFormer's fidelity fusion blocks, used when the forward's ``fidelity`` > 0),
    ``adain_lookup`` (the fused looked-up latent takes the channel statistics of
    the conditioned LQ latent before decoding) and ``upstream_attention`` (the
    Transformer's explicit-softmax attention path, bit-identical to theirs).
    """

    config_name = "IQPFR model"

    hq_codebook_size: int = 1024
    alpha: float = 1.0
    hq_threshold: float = 0.9
    fusion: str = "add"
    fusion_heads: int = 8
    hq_quantize: str = "latent"
    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    dim_mlp: int = 1024
    levels: int = 10
    condition: str = "add"
    head: str = "split"
    connect_list: tuple[str, ...] = ()
    adain_lookup: bool = False
    upstream_attention: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()  # validates the VQGAN fields
        object.__setattr__(self, "connect_list", tuple(str(int(s)) for s in self.connect_list))
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.head == "joint" and self.hq_codebook_size != self.codebook_size:
            raise ValueError(f"head='joint' needs hq_codebook_size == codebook_size, got {self.hq_codebook_size} "
                             f"and {self.codebook_size}")
        sizes = {str(self.img_size // 2 ** i) for i in range(len(self.ch_mult))}
        bad = [s for s in self.connect_list if s not in sizes]
        if bad:
            raise ValueError(f"connect_list entries {bad} are not feature sizes of this VQGAN "
                             f"(choose from {sorted(sizes, key=int)})")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.hq_quantize not in HQ_QUANTIZE:
            raise ValueError(f"hq_quantize must be one of {HQ_QUANTIZE}, got {self.hq_quantize!r}")
        for name in ("hq_codebook_size", "dim_embd", "n_head", "n_layers", "dim_mlp", "levels", "fusion_heads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim_embd % self.n_head:
            raise ValueError(f"dim_embd ({self.dim_embd}) must be divisible by n_head ({self.n_head})")
        if self.fusion == "attention" and self.emb_dim % self.fusion_heads:
            raise ValueError(f"emb_dim ({self.emb_dim}) must be divisible by fusion_heads ({self.fusion_heads})")
        if not 0.0 <= self.hq_threshold <= 1.0:
            raise ValueError(f"hq_threshold must lie in [0, 1], got {self.hq_threshold}")


TINY = IQPFRConfig(img_size=64, nf=8, ch_mult=(1, 2, 2, 4), attn_resolutions=(8,), emb_dim=16, codebook_size=32,
                   hq_codebook_size=16, fusion_heads=2, dim_embd=32, n_head=2, n_layers=2, dim_mlp=64)
"""A tiny configuration for CPU tests (64² images, 8×8×16 latent)."""

IQPIR = IQPFRConfig(alpha=0.5, hq_threshold=0.7, head="joint", connect_list=("32", "64", "128", "256"),
                    adain_lookup=True, upstream_attention=True)
"""The authors' released network (IQPIR, ``CodeFormer(quantizer_type='dual_codebook', score_embedding='add')``):
α = their inference's ``aesthetic_weight`` 0.5, S_thr = their Stage I config's 0.70."""

TINY_IQPIR = IQPFRConfig(**{**TINY.to_dict(), "hq_codebook_size": TINY.codebook_size, "alpha": 0.5,
                            "head": "joint", "connect_list": ("16", "32"), "adain_lookup": True,
                            "upstream_attention": True})
""":data:`IQPIR`'s structure at the tiny size (tests, ONNX checks)."""
