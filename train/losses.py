"""GAN losses on D's raw outputs (logits for ``ns`` and ``rpgan``, critic values for ``hinge`` and
``wgan-gp``), and the gradient penalties.

``ns``: D minimises BCE(real -> 1) + BCE(fake -> 0); G the non-saturating BCE(fake -> 1).
``hinge``: D minimises relu(1 - D(x)) + relu(1 + D(G(z))); G minimises -D(G(z)).
``wgan-gp``: D minimises D(G(z)) - D(x) + weight * (|grad D(x_hat)| - 1)^2 on random interpolates
(Gulrajani et al. 2017); G minimises -D(G(z)).
``rpgan``: the relativistic pairing loss of R3GAN (Huang et al., NeurIPS 2024): real i is paired with
fake i; D minimises softplus(-(D(x_i) - D(G(z_i)))), G minimises softplus(-(D(G(z_i)) - D(x_i))).
It is meant to be trained with zero-centred penalties on real and fake data (``--gamma``: R1 + R2).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

RELATIVISTIC = ("rpgan",)  # G's loss needs D(x) of a real batch as well as D(G(z))


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """real, fake: D outputs (N,) -> scalar (the gradient penalty of wgan-gp is added by the caller)."""
    if kind == "ns":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "rpgan":
        return F.softplus(fake - real).mean()
    return fake.mean() - real.mean()  # wgan-gp


def g_loss(kind: str, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """fake: D(G(z)) (N,); real: D(x) (N,), needed only by the relativistic losses (RELATIVISTIC)."""
    if kind == "ns":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "rpgan":
        return F.softplus(real - fake).mean()
    return -fake.mean()


def gradient_penalty(D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None) -> torch.Tensor:
    """WGAN-GP: mean (|grad_x D(x)| - 1)^2 at x = a real + (1 - a) fake, a ~ U(0, 1) per sample."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)  # (N, 1, 1, 1)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed, labels).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def squared_gradient_norms(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """|grad_x D(x)|^2 per sample: outputs (N,) computed from inputs (N, ...) that require grad -> (N,).

    The zero-centred penalties are means of it: R1 over real samples (Mescheder et al. 2018), R2 over
    fake ones; ``create_graph`` so that D's update differentiates through them.
    """
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1)
