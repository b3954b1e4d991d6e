"""IQPFR (arXiv 2503.09294): dual-codebook VQGAN (Stage I) and score-conditioned code prediction (Stages II–III).

>>> from iqprior.models.iqpfr import IQPFR, IQPFRConfig, TINY
>>> net = IQPFR(TINY)
>>> out = net(torch.rand(1, 3, 64, 64) * 2 - 1, score=9)   # doctest: +SKIP
"""
from .config import CONDITIONS, FUSIONS, IQPIR, TINY, TINY_IQPIR, IQPFRConfig
from .discriminator import PatchDiscriminator
from .dual_vqgan import AttentionFusion, DualCodebookVQGAN
from .model import DEFAULT_LEVEL, IQPFR, IQPFROutput

__all__ = ["IQPFRConfig", "TINY", "IQPIR", "TINY_IQPIR", "FUSIONS", "CONDITIONS", "DualCodebookVQGAN", "AttentionFusion", "IQPFR",
           "IQPFROutput", "DEFAULT_LEVEL", "PatchDiscriminator"]
