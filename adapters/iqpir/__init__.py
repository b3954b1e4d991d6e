"""IQPIR, the IQPFR authors' released network, behind the adapter interface (network: :mod:`iqprior.models.iqpfr`)."""
from .adapter import OFFICIAL_RENAMES, IQPIRAdapter, build_iqpir, official_key, our_key

__all__ = ["IQPIRAdapter", "build_iqpir", "OFFICIAL_RENAMES", "official_key", "our_key"]
