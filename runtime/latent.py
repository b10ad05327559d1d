"""The portable latent RNG: one seed gives the same z on every backend, machine and thread count.

Name: ``splitmix64-boxmuller-v1`` (stored in model.onnx metadata as ``latent_rng``). Specification,
re-implemented bit for bit by the native library (cpp/src/latent.cpp):

  * u64 word k (k = 0, 1, 2, ...) of seed s is the k-th output of SplitMix64 started at s:
        x = s + (k + 1) * 0x9E3779B97F4A7C15            (mod 2**64)
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB
        word = x ^ (x >> 31)
  * normal pair j uses words 2j and 2j+1 (float64 arithmetic):
        u1 = ((word[2j] >> 11) + 1) * 2**-53           in (0, 1]
        u2 =  (word[2j+1] >> 11)    * 2**-53           in [0, 1)
        r  = sqrt(-2 ln u1)
        z[2j] = r cos(2 pi u2),  z[2j+1] = r sin(2 pi u2)
  * ``latent(n, seed)`` fills z of shape (n, latent_dim) in row-major order with these values cast
    to float32; an odd total drops the last sine. Row i of a batch therefore depends only on
    (seed, i): a request for n rows is a prefix of a request for more.
  * seeds are integers in [0, 2**64).
"""
from __future__ import annotations

import numpy as np

LATENT_RNG = "splitmix64-boxmuller-v1"

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 2.0**-53


def splitmix64_words(seed: int, count: int) -> np.ndarray:
    """The first ``count`` outputs of SplitMix64 started at ``seed``: uint64 (count,)."""
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps mod 2**64 by design
        x = np.uint64(seed) + (np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def standard_normal(seed: int, count: int) -> np.ndarray:
    """``count`` standard normal float32 values from ``seed`` (the spec above): (count,)."""
    pairs = (count + 1) // 2
    words = splitmix64_words(seed, 2 * pairs).reshape(pairs, 2)  # (pairs, 2)
    u1 = ((words[:, 0] >> np.uint64(11)).astype(np.float64) + 1.0) * _TWO_POW_MINUS_53
    u2 = (words[:, 1] >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    z = np.empty((pairs, 2), dtype=np.float64)
    z[:, 0] = radius * np.cos(angle)
    z[:, 1] = radius * np.sin(angle)
    return z.reshape(-1)[:count].astype(np.float32)


def latent(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """The z that ``Sampler.sample(n, seed)`` feeds the generator: float32 (n, latent_dim)."""
    if n < 0 or latent_dim <= 0:
        raise ValueError(f"need n >= 0 and latent_dim > 0, got n={n}, latent_dim={latent_dim}")
    return standard_normal(seed, n * latent_dim).reshape(n, latent_dim)
