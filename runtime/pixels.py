"""The pixel criterion: when a model with rounded weights (float16) may stand in for the float32 one.

It may when its uint8 images equal the float32 model's on at least 99.9% of pixels and differ by at most
one grey level elsewhere (the same claim as between backends: docs/native.md, "Same images on every
backend?"). The rule lives here only: gan-export's automatic choice of the weights' dtype,
scripts/make_pretrained.py, benchmarks/half_weights.py and the tests all call ``PixelAgreement.passes``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sampler import Sampler

EQUAL_PER_MILLE = 999  # at least 999 of every 1000 pixels equal (99.9%), counted in integers: no float edge
MAX_LEVELS = 1  # the most grey levels any pixel may move


@dataclass(frozen=True)
class PixelAgreement:
    """How two sets of uint8 images of the same z agree; ``a + b`` pools two batches."""

    pixels: int
    differing: int  # pixels whose values are not equal
    max_levels: int  # the largest |difference| of any pixel, in grey levels

    @property
    def equal_fraction(self) -> float:
        return 1.0 - self.differing / self.pixels if self.pixels else 1.0

    @property
    def passes(self) -> bool:
        return self.max_levels <= MAX_LEVELS and 1000 * (self.pixels - self.differing) >= EQUAL_PER_MILLE * self.pixels

    def __add__(self, other: PixelAgreement) -> PixelAgreement:
        return PixelAgreement(self.pixels + other.pixels, self.differing + other.differing,
                              max(self.max_levels, other.max_levels))

    def __str__(self) -> str:
        return (f"{self.equal_fraction:.3%} of {self.pixels:,} pixels equal, at most {self.max_levels} grey "
                f"level{'s' if self.max_levels != 1 else ''} apart (criterion >= {EQUAL_PER_MILLE / 10:g}%, "
                f"<= {MAX_LEVELS}: {'met' if self.passes else 'not met'})")


def compare_pixels(reference: np.ndarray, candidate: np.ndarray) -> PixelAgreement:
    """Two uint8 arrays of the same shape (images of the same z) -> their ``PixelAgreement``."""
    if reference.dtype != np.uint8 or candidate.dtype != np.uint8 or reference.shape != candidate.shape:
        raise ValueError(f"compare_pixels needs two uint8 arrays of one shape, got {reference.dtype} "
                         f"{reference.shape} and {candidate.dtype} {candidate.shape}")
    difference = np.abs(reference.astype(np.int16) - candidate)  # int16: uint8 subtraction would wrap
    return PixelAgreement(int(difference.size), int(np.count_nonzero(difference)), int(difference.max(initial=0)))


def measure_agreement(reference: Sampler, candidate: Sampler, n: int, seed: int = 0,
                      batch: int = 1000) -> PixelAgreement:
    """The agreement of ``candidate``'s images with ``reference``'s on the same ``n`` samples
    (``reference.sample(n, seed)``'s z and labels), ``batch`` images at a time to bound the memory."""
    z, labels = reference.latent(n, seed), reference.labels(n, None)  # (n, latent_dim), (n,) or None
    total = PixelAgreement(0, 0, 0)
    for start in range(0, n, batch):
        rows = slice(start, start + batch)
        part = None if labels is None else labels[rows]
        total += compare_pixels(reference.pixels(z[rows], part), candidate.pixels(z[rows], part))
    return total
