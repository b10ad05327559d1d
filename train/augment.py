"""Differentiable augmentation for D (DiffAugment, Zhao et al. 2020): the same random transforms on
real and generated images, so that D cannot memorise a small data set and G's gradients pass through.

``translation``: each image shifted by up to 1/8 of its side in each direction (integer pixels), the
uncovered border filled with -1 (the dark end of the [-1, 1] range: MNIST's background).
``cutout``: one square of half the side, placed at random per image, multiplied by 0 (as DiffAugment).
Random draws come from torch's global generator, so checkpoints (which hold its state) resume exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
MIN_SIDE = 8  # smaller images leave nothing to translate or cut out


def translation(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W), each image moved by its own (dy, dx)."""
    n, _, h, w = images.shape
    shift_h, shift_w = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, (n, 1, 1), device=images.device)
    dx = torch.randint(-shift_w, shift_w + 1, (n, 1, 1), device=images.device)
    padded = F.pad(images, (shift_w, shift_w, shift_h, shift_h), value=-1.0)  # (N, C, H + 2sh, W + 2sw)
    rows = torch.arange(h, device=images.device).view(1, h, 1) + shift_h - dy  # (N, H, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w) + shift_w - dx  # (N, 1, W)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # gather (N, H, W, C) -> NCHW


def cutout(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W) with one zeroed square of side H/2 x W/2 per image."""
    n, _, h, w = images.shape
    size_h, size_w = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    # The square's top-left corner; it may hang over the edge, as in DiffAugment.
    top = torch.randint(0, h + (1 - size_h % 2), (n, 1, 1), device=images.device) - size_h // 2
    left = torch.randint(0, w + (1 - size_w % 2), (n, 1, 1), device=images.device) - size_w // 2
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)  # (N, H, W)
    return images * (~inside).unsqueeze(1).to(images.dtype)


TRANSFORMS = {"translation": translation, "cutout": cutout}


def augment(images: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Apply each named transform of ``policy`` in order; () returns ``images`` itself."""
    for name in policy:
        images = TRANSFORMS[name](images)
    return images
