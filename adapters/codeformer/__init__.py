"""CodeFormer and CodeFormer+: the port (:mod:`.arch`), the adapter and its "+" builder (:mod:`.adapter`)."""
from .adapter import STAGE2_LOSS_WEIGHTS, CodeFormerAdapter, build_codeformer, build_codeformer_plus
from .arch import CodeFormer, CodeFormerConfig, FuseSFTBlock, adaptive_instance_norm

__all__ = ["CodeFormerAdapter", "build_codeformer", "build_codeformer_plus", "STAGE2_LOSS_WEIGHTS",
           "CodeFormer", "CodeFormerConfig", "FuseSFTBlock", "adaptive_instance_norm"]
