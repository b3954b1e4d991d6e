"""Losses: the quality objective (Eq. 12) and the VQ / feature / index losses of the IQPFR stages."""
from .quality import QualityLoss

__all__ = ["QualityLoss"]
