"""Truncation ``truncated-resample-v1`` (runtime/latent.py): the vectorised rule against a scalar
reference of its specification, its properties (bound, untouched values, prefix), and bit-identical z
from every implementation of it: numpy, the C++ library (native module; the C ABI in test_c_abi.py; the
browser in test_web.py), then the images of both backends and gan-sample --truncation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from onnxgan.runtime import Sampler
from onnxgan.runtime.latent import ATTEMPT_STRIDE, latent, standard_normal, truncate

from kit import NATIVE_TINY, reference_normals, run_sample



def reference_truncated(seed: int, count: int, truncation: float) -> list[float]:
    """The spec one value at a time: number c's attempt a is normal number a * 2**40 + c."""
    threshold = float(np.float32(truncation))
    values = []
    for c, value in enumerate(reference_normals(seed, count)):
        attempt = 1
        while abs(float(np.float32(value))) > threshold:
            number = attempt * ATTEMPT_STRIDE + c
            value = reference_normals_at(seed, number)
            attempt += 1
        values.append(value)
    return values


def reference_normals_at(seed: int, number: int) -> float:
    """Normal number ``number`` of seed's stream: pair number // 2, cosine if even, sine if odd."""
    mask = 2**64 - 1

    def word(k: int) -> int:
        x = (seed + (k + 1) * 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    pair = number // 2
    radius = math.sqrt(-2.0 * math.log(((word(2 * pair) >> 11) + 1) * 2.0**-53))
    angle = 2 * math.pi * ((word(2 * pair + 1) >> 11) * 2.0**-53)
    return radius * (math.sin(angle) if number % 2 else math.cos(angle))


@pytest.mark.parametrize("seed", [0, 7, 2**64 - 1])
@pytest.mark.parametrize("truncation", [0.1, 0.7, 2.0])
def test_the_rule_equals_the_scalar_reference(seed, truncation):
    expected = np.array(reference_truncated(seed, 51, truncation), dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(latent(3, 17, seed, truncation).ravel(), expected)


def test_only_values_beyond_the_threshold_change_and_all_end_within_it():
    plain, truncated = latent(500, 100, 3), latent(500, 100, 3, truncation=0.5)  # 50k values
    inside = np.abs(plain) <= np.float32(0.5)
    np.testing.assert_array_equal(truncated[inside], plain[inside])
    assert np.abs(truncated).max() <= np.float32(0.5) and not np.array_equal(truncated, plain)
    assert 0.35 < inside.mean() < 0.41  # P(|z| <= 0.5) = 0.383: most values are redrawn
    # The redrawn values are a truncated normal, so spread over the interval rather than piled at the ends.
    assert 0.2 < np.abs(truncated[~inside]).mean() < 0.3


def test_a_truncated_batch_is_a_prefix_of_a_larger_one():
    np.testing.assert_array_equal(latent(3, 9, 11, truncation=0.3), latent(8, 9, 11, truncation=0.3)[:3])


def test_truncate_of_a_later_slice_equals_the_slice_of_the_whole():
    whole = truncate(standard_normal(5, 40), 5, 0, 0.4)
    np.testing.assert_array_equal(truncate(standard_normal(5, 40)[25:], 5, 25, 0.4), whole[25:])


@pytest.mark.parametrize("bad", [0.05, 0.0, -1.0, float("nan")])
def test_thresholds_below_the_minimum_are_refused(bad):
    with pytest.raises(ValueError, match="truncation must be >= 0.1"):
        latent(1, 4, 0, truncation=bad)


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 9, 2**64 - 1])
@pytest.mark.parametrize("truncation", [0.1, 0.25, 0.7, 1.5, 3.0])
def test_the_cpp_library_draws_the_same_bits(seed, truncation):
    from onnxgan.runtime import _native

    for n, latent_dim in ((1, 1), (7, 13), (64, 100)):
        np.testing.assert_array_equal(_native.latent(n, latent_dim, seed, truncation), latent(n, latent_dim, seed, truncation),
                                      err_msg=f"n={n} latent_dim={latent_dim} seed={seed} truncation={truncation}")


def test_both_backends_sample_the_same_truncated_z():
    """Same z bit for bit; images as close as the backends' float results (docs/native.md: at most one
    grey level apart)."""
    native, ort = Sampler(NATIVE_TINY, backend="native"), Sampler(NATIVE_TINY, backend="onnxruntime")
    np.testing.assert_array_equal(native.latent(64, 5, 0.6), ort.latent(64, 5, 0.6))
    ours, theirs = native.sample(64, 5, truncation=0.6), ort.sample(64, 5, truncation=0.6)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    assert not np.array_equal(ours, native.sample(64, 5))


def test_sampler_refuses_a_bad_truncation_with_a_user_error():
    from onnxgan.errors import UserError

    with pytest.raises(UserError, match="truncation must be >= 0.1"):
        Sampler(NATIVE_TINY).sample(4, truncation=0.01)


def test_gan_sample_truncation_writes_the_truncated_z(tmp_path):
    result = run_sample(NATIVE_TINY, "-n", 6, "--seed", 4, "--truncation", 0.5, "-o", tmp_path / "s.npz")
    assert result.exit_code == 0, result.output
    saved = np.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(saved["z"], latent(6, 6, 4, truncation=0.5))
    np.testing.assert_array_equal(saved["images"], Sampler(NATIVE_TINY).sample(6, 4, truncation=0.5))


@pytest.mark.parametrize("args, message", [
    (["--truncation", "0.05"], "0.05 is not in the range x>=0.1"),
    (["--truncation", "0.05", "--shard-size", "2"], "0.05 is not in the range x>=0.1"),  # shard jobs alike
])
def test_gan_sample_refuses_bad_truncation_in_one_line(tmp_path, args, message):
    result = run_sample(NATIVE_TINY, "-n", 4, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
