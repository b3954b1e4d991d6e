"""NU2Net and NU2Net+: the port (:mod:`.arch`), the adapter and its "+" builder (:mod:`.adapter`)."""
from .adapter import NU2NetAdapter, build_nu2net, build_nu2net_plus, network_size
from .arch import NU2Net, normalize_global, normalize_per_channel

__all__ = ["NU2NetAdapter", "build_nu2net", "build_nu2net_plus", "network_size", "NU2Net",
           "normalize_global", "normalize_per_channel"]
