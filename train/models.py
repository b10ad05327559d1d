"""Generators and discriminators, built from a ``ModelConfig`` alone.

``mlp`` (seed 000): G latent-256-512-1024-784, LeakyReLU(0.2), tanh; D 784-1024-512-256-1,
LeakyReLU(0.2), dropout 0.3, returning logits. ``mlp-bn`` (seed 004): the same G with BatchNorm after
each hidden Linear (momentum 0.2, i.e. Keras' 0.8; eps left at its default), D 784-784-392-1.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> image (N, C, H, W) in [-1, 1]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.image_shape = config.image_shape
        batch_norm = config.name == "mlp-bn"
        layers: list[nn.Module] = []
        width_in = config.latent_dim
        for width in config.g_hidden:
            layers.append(nn.Linear(width_in, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width, momentum=config.bn_momentum))
            layers.append(nn.LeakyReLU(config.leaky_slope))
            width_in = width
        layers += [nn.Linear(width_in, config.image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)  # (N, C*H*W) -> (N, C, H, W)


class Dropout(nn.Module):
    """Inverted dropout drawing its mask with ``torch.rand``: the same distribution as ``nn.Dropout``,
    but on CPU ``rand`` is about 3.5x faster than the ``bernoulli_`` that ``nn.Dropout`` calls (1.0 vs
    0.28 ms for a (128, 1024) mask here), which was 14% of an ``mlp`` training step."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p  # (N, width) bool
        return x * keep / (1.0 - self.p)


class MLPDiscriminator(nn.Module):
    """image (N, C, H, W) in [-1, 1] -> logit (N,); sigmoid(logit) is D's belief that it is real."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = config.image_size
        for width in config.d_hidden:
            layers += [nn.Linear(width_in, width), nn.LeakyReLU(config.leaky_slope)]
            if config.d_dropout > 0:
                layers.append(Dropout(config.d_dropout))
            width_in = width
        layers.append(nn.Linear(width_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).squeeze(1)  # (N, 1) -> (N,)


def build_models(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for a resolved, validated config, freshly initialised from torch's current RNG."""
    return MLPGenerator(config), MLPDiscriminator(config)
