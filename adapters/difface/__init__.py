"""DifFace and DifFace+: the two networks (:mod:`.unet`, :mod:`.swinir`), the weightless sampler
(:mod:`.sampler`), the adapter and its "+" builder (:mod:`.adapter`)."""
from .adapter import DifFace, build_difface, build_difface_plus
from .sampler import DifFaceSampler, SamplerConfig, space_timesteps
from .swinir import SwinIR, SwinIRConfig
from .unet import UNet, UNetConfig

__all__ = ["DifFace", "build_difface", "build_difface_plus", "DifFaceSampler", "SamplerConfig", "space_timesteps",
           "SwinIR", "SwinIRConfig", "UNet", "UNetConfig"]
