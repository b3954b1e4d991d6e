"""Losses: the quality objective (Eq. 12) and the VQ / feature / index losses of the IQPFR stages."""
from .quality import QualityLoss
from .vq import codebook_loss, feature_loss, index_loss

__all__ = ["QualityLoss", "codebook_loss", "feature_loss", "index_loss"]
