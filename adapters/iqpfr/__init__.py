"""IQPFR behind the adapter interface (the network itself is the core's :mod:`iqprior.models.iqpfr`)."""
from .adapter import PRESETS, IQPFRAdapter, build_iqpfr

__all__ = ["IQPFRAdapter", "build_iqpfr", "PRESETS"]
