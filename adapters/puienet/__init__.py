"""PUIE-Net and PUIE-Net+: the port (:mod:`.arch`), the adapter and its "+" builder (:mod:`.adapter`)."""
from .adapter import PUIENetAdapter, build_puienet, build_puienet_plus, network_size
from .arch import PUIENet

__all__ = ["PUIENetAdapter", "build_puienet", "build_puienet_plus", "network_size", "PUIENet"]
