"""Failed-run detection: the states of a run that a user must not miss, read from figures the loop has anyway.

- **D wins outright**: D's loss pinned at its floor (0 for ``ns``, ``hinge`` and ``rpgan``: D separates every
  real from every fake, so G gets no useful gradient) over ``STREAK`` log rows in a row. ``wgan-gp``'s
  critic loss has no floor, so it is not judged.
- **G's output is constant**: the 64 grid images (fixed z) hardly differ from each other, against how much
  the real images differ: a complete mode collapse.
- **G's output is saturated**: almost no generated pixel lies between the two ends of tanh's range, where
  real images have many.
  Both image states count from ``IMAGE_STREAK`` grids in a row: an untrained G is often near constant in
  eval mode (its BatchNorm running statistics still at their initial values), so one grid proves nothing.
- **Not finite**: a loss or weight became NaN/Inf (the loop stops at once: exit 3).

The image checks compare with the real data, so they hold for any data, not only MNIST digits. A state
is reported once when it begins (and once when it ends); the states still holding at the end of the run
make it a failed run (exit 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STREAK = 5  # log rows in a row (500 steps at the default --log-every 100) before "D wins" is declared
IMAGE_STREAK = 2  # sample grids in a row (1000 steps at the default --sample-every 500) for the image states
PINNED_D_LOSS = 0.02  # ns: D(x) >= 0.99 and D(G(z)) <= 0.01 give d_loss <= 0.02
JUDGED_LOSSES = ("ns", "hinge", "rpgan")  # losses with a floor at 0
CONSTANT_SPREAD = 0.05  # G's spread across samples under 5% of the real images' spread: constant
SATURATED_MIDTONES = 0.1  # mid-tone share under 10% of the real images' share: saturated
MIDTONE = 0.98  # |pixel| < 0.98 in [-1, 1] is a mid-tone (anything short of black or white)


def spread(images: np.ndarray) -> float:
    """How much images differ from each other: the mean over pixels of the standard deviation across the
    batch. images: float (N, C, H, W) in [-1, 1] -> a float in [0, 1]."""
    return float(images.reshape(len(images), -1).std(axis=0).mean())


def midtone_share(images: np.ndarray) -> float:
    """The share of pixels strictly between the two ends of [-1, 1]."""
    return float((np.abs(images) < MIDTONE).mean())


@dataclass
class RunHealth:
    """Watches one run. ``loss`` is --loss; the real images' spread and mid-tone share are the anchors of the
    image states (``for_data`` computes them from real images, float (N, C, H, W) in [-1, 1])."""

    loss: str
    real_spread: float
    real_midtones: float
    active: dict[str, tuple[int, str]] = field(default_factory=dict)  # state -> (step it began, message)
    streaks: dict[str, tuple[int, int]] = field(default_factory=dict)  # state -> (checks in a row, first step)

    @classmethod
    def for_data(cls, loss: str, real: np.ndarray) -> "RunHealth":
        return cls(loss, spread(real), midtone_share(real))

    def observe_losses(self, step: int, stats: dict[str, float]) -> list[str]:
        """A log row's means (d_loss, g_loss, D(x), D(G(z))) -> the warnings of states that begin or end."""
        if self.loss not in JUDGED_LOSSES:
            return []
        outputs = (f", D(x) {stats['D(x)']:.3f}, D(G(z)) {stats['D(G(z))']:.3f}" if self.loss == "ns" else "")
        return self._update("d_wins", stats["d_loss"] <= PINNED_D_LOSS, step, STREAK,
                            f"D wins outright: d_loss {stats['d_loss']:.3f}{outputs} over {STREAK} log rows in a "
                            "row, so G gets no useful gradient (try a lower --d-lr, --gamma, or --augment)")

    def observe_images(self, step: int, images: np.ndarray) -> list[str]:
        """The grid's images, float (N, C, H, W) in [-1, 1] -> the warnings of states that begin or end."""
        if len(images) < 2:
            return []
        gen_spread, gen_midtones = spread(images), midtone_share(images)
        warnings = self._update("constant", gen_spread < CONSTANT_SPREAD * self.real_spread, step, IMAGE_STREAK,
                                f"G's output is nearly the same for every z (spread {gen_spread:.4f} against the "
                                f"real images' {self.real_spread:.4f}): a complete mode collapse")
        return warnings + self._update(
            "saturated", gen_midtones < SATURATED_MIDTONES * self.real_midtones, step, IMAGE_STREAK,
            f"G's output is saturated: {gen_midtones:.1%} of its pixels lie between black and white, against "
            f"{self.real_midtones:.1%} of the real images'")

    def _update(self, state: str, seen: bool, step: int, streak: int, message: str) -> list[str]:
        """Count ``state``'s checks in a row; it holds from ``streak`` of them on."""
        count, first = self.streaks.get(state, (0, step))
        self.streaks[state] = (count + 1, first if count else step) if seen else (0, step)
        holds = seen and count + 1 >= streak
        if holds and state not in self.active:
            self.active[state] = (self.streaks[state][1], message)
            return [message]
        if not holds and state in self.active:
            began, _ = self.active.pop(state)
            return [f"recovered: the state that began at step {began} ({state.replace('_', ' ')}) no longer holds"]
        return []

    def failures(self) -> list[str]:
        """The states that hold now, each as 'since step S: message'."""
        return [f"since step {since}: {message}" for since, message in self.active.values()]
