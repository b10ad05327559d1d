"""GAN losses on D's raw outputs (logits for ``ns``, critic values for ``hinge`` and ``wgan-gp``).

``ns``: D minimises BCE(real -> 1) + BCE(fake -> 0); G the non-saturating BCE(fake -> 1).
``hinge``: D minimises relu(1 - D(x)) + relu(1 + D(G(z))); G minimises -D(G(z)).
``wgan-gp``: D minimises D(G(z)) - D(x) + weight * (|grad D(x_hat)| - 1)^2 on random interpolates
(Gulrajani et al. 2017); G minimises -D(G(z)).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """real, fake: D outputs (N,) -> scalar (the gradient penalty of wgan-gp is added by the caller)."""
    if kind == "ns":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return fake.mean() - real.mean()  # wgan-gp


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "ns":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    return -fake.mean()


def gradient_penalty(D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None) -> torch.Tensor:
    """WGAN-GP: mean (|grad_x D(x)| - 1)^2 at x = a real + (1 - a) fake, a ~ U(0, 1) per sample."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)  # (N, 1, 1, 1)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed, labels).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(real_outputs: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): 0.5 * mean |grad_x D(x)|^2 on real x (x must require grad)."""
    (grad,) = torch.autograd.grad(real_outputs.sum(), real, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(dim=1).mean()
