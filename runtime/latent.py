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

Truncation ``truncated-resample-v1`` (``latent(..., truncation=t)``, gan-sample ``--truncation``, the C
ABI's ``truncation`` argument and the web page's slider; 0 or None in the APIs means off):

  * t is rounded to float32 first; t must be at least ``MIN_TRUNCATION`` (0.1: P(|z| <= t) >= 0.08,
    so a coordinate needs at most a few hundred draws even among billions).
  * number c of the request (c = i * latent_dim + k for row i, column k) starts as above; while its
    float32 |value| > t, attempt a = 1, 2, ... replaces it by normal number ``a * 2**40 + c`` of the
    same seed's stream (pair (a * 2**40 + c) >> 1, its cosine for an even number, its sine for an odd
    one). Requests are therefore limited to 2**40 numbers, and row i still depends only on (seed, i).
  * the result is each coordinate drawn from N(0, 1) truncated to [-t, t]; every step is integer
    arithmetic, one float64 formula and a float32 comparison, so every backend gets the same bits.
"""
from __future__ import annotations

import numpy as np

LATENT_RNG = "splitmix64-boxmuller-v1"
TRUNCATION_RULE = "truncated-resample-v1"
MIN_TRUNCATION = 0.1
ATTEMPT_STRIDE = 2**40  # attempt a of number c is number a * ATTEMPT_STRIDE + c

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 2.0**-53


def splitmix64_words(seed: int, count: int) -> np.ndarray:
    """The first ``count`` outputs of SplitMix64 started at ``seed``: uint64 (count,)."""
    return _words(seed, np.arange(count, dtype=np.uint64))


def _words(seed: int, counters: np.ndarray) -> np.ndarray:
    """Words k of SplitMix64 started at ``seed`` for uint64 counters k (any shape)."""
    _check_seed(seed)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps mod 2**64 by design
        x = np.uint64(seed) + (counters + np.uint64(1)) * _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")


def _polar(seed: int, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(radius, angle) float64 of normal pairs j (uint64 array) of ``seed``."""
    u1 = ((_words(seed, 2 * pairs) >> np.uint64(11)).astype(np.float64) + 1.0) * _TWO_POW_MINUS_53
    u2 = (_words(seed, 2 * pairs + np.uint64(1)) >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53
    return np.sqrt(-2.0 * np.log(u1)), 2.0 * np.pi * u2


def standard_normal(seed: int, count: int) -> np.ndarray:
    """``count`` standard normal float32 values from ``seed`` (the spec above): (count,)."""
    pairs = (count + 1) // 2
    radius, angle = _polar(seed, np.arange(pairs, dtype=np.uint64))  # (pairs,) each
    z = np.empty((pairs, 2), dtype=np.float64)
    z[:, 0] = radius * np.cos(angle)
    z[:, 1] = radius * np.sin(angle)
    return z.reshape(-1)[:count].astype(np.float32)


def normals_at(seed: int, numbers: np.ndarray) -> np.ndarray:
    """Normal numbers m (uint64 array) of ``seed``'s stream, as ``standard_normal`` gives them: float32."""
    radius, angle = _polar(seed, numbers >> np.uint64(1))
    odd = (numbers & np.uint64(1)).astype(bool)
    return np.where(odd, radius * np.sin(angle), radius * np.cos(angle)).astype(np.float32)


def check_truncation(truncation: float | None) -> None:
    """None (off) or a number >= MIN_TRUNCATION; ValueError otherwise."""
    if truncation is not None and not truncation >= MIN_TRUNCATION:  # NaN fails too
        raise ValueError(f"truncation must be >= {MIN_TRUNCATION} (or None for none), got {truncation}")


def truncate(values: np.ndarray, seed: int, first: int, truncation: float) -> np.ndarray:
    """``truncated-resample-v1`` on numbers first, first + 1, ... of ``seed``'s stream (``values``,
    float32 (count,), as ``standard_normal`` drew them): the same array with every value whose |value|
    exceeds float32(truncation) redrawn (the spec above)."""
    check_truncation(truncation)
    if first + values.size > ATTEMPT_STRIDE:
        raise ValueError(f"truncation covers at most 2**40 latent numbers, got {first + values.size}")
    threshold = np.float32(truncation)
    out = values.copy()
    numbers = np.flatnonzero(np.abs(out) > threshold).astype(np.uint64)  # indices into out
    attempt = 1
    while numbers.size:
        draws = normals_at(seed, np.uint64(attempt * ATTEMPT_STRIDE + first) + numbers)
        out[numbers] = draws
        numbers = numbers[np.abs(draws) > threshold]
        attempt += 1
    return out


def latent(n: int, latent_dim: int, seed: int, truncation: float | None = None, first: int = 0) -> np.ndarray:
    """Rows [first, first + n) of the z that ``Sampler.sample(first + n, seed, truncation=...)`` feeds the
    generator, without drawing the rows before: float32 (n, latent_dim)."""
    if n < 0 or latent_dim <= 0 or first < 0:
        raise ValueError(f"need n >= 0, latent_dim > 0 and first >= 0, got n={n}, latent_dim={latent_dim}, "
                         f"first={first}")
    start = first * latent_dim  # number of z[first, 0] in seed's stream
    z = _stream(seed, start, n * latent_dim)  # (n * latent_dim,)
    if truncation is not None:
        z = truncate(z, seed, start, truncation)
    return z.reshape(n, latent_dim)


def _stream(seed: int, start: int, count: int) -> np.ndarray:
    """Numbers [start, start + count) of ``seed``'s stream: float32 (count,).

    SplitMix64 word m of seed s is word 0 of seed (s + m * GOLDEN) mod 2**64, and normal pair p uses
    words 2p and 2p + 1, so the stream from pair p on is the stream of seed s + 2p * GOLDEN. A start
    inside a pair (an odd latent_dim) drops that pair's cosine.
    """
    _check_seed(seed)  # before the seek below wraps it into range
    pair = start // 2
    pair_seed = (seed + 2 * pair * int(_GOLDEN)) % 2**64
    return standard_normal(pair_seed, start + count - 2 * pair)[start - 2 * pair:]
