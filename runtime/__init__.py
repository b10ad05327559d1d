"""Sampling from model.onnx with numpy + onnxruntime or the native kernel; never imports torch.

    from onnxgan.runtime import Sampler
    sampler = Sampler("model.onnx")          # backend="auto", device="auto"
    images = sampler.sample(64, seed=0)      # uint8 (64, 28, 28)
"""
from .latent import latent
from .sampler import Sampler

__all__ = ["Sampler", "latent"]
