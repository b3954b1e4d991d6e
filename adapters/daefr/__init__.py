"""DAEFR and DAEFR+: the port (:mod:`.arch`), the adapter and its "+" builder (:mod:`.adapter`)."""
from .adapter import FEATURE_LOSS_WEIGHT, DAEFRAdapter, build_daefr, build_daefr_plus
from .arch import UNUSED_AT_INFERENCE, DAEFRConfig, DAEFRNet, DAEFROutput

__all__ = ["DAEFRAdapter", "build_daefr", "build_daefr_plus", "FEATURE_LOSS_WEIGHT",
           "DAEFRConfig", "DAEFRNet", "DAEFROutput", "UNUSED_AT_INFERENCE"]
