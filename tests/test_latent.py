"""The portable latent RNG (runtime/latent.py): published SplitMix64 words, a scalar reference of the
spec beside the vectorised code, the prefix property, and its refusals."""
from __future__ import annotations


import numpy as np
import pytest

from onnxgan.runtime import latent
from onnxgan.runtime.latent import splitmix64_words, standard_normal

from kit import reference_normals

def test_splitmix64_matches_the_published_sequence_for_seed_0():
    # The first outputs of Vigna's splitmix64.c started at 0.
    assert splitmix64_words(0, 3).tolist() == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 7, 2**64 - 1])
@pytest.mark.parametrize("count", [0, 1, 2, 7, 100])
def test_vectorised_normals_equal_the_scalar_reference(seed, count):
    expected = np.array(reference_normals(seed, count), dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(standard_normal(seed, count), expected, err_msg=f"seed={seed} count={count}")


@pytest.mark.parametrize("latent_dim", [1, 3, 100])
def test_a_smaller_batch_is_a_prefix_of_a_larger_one(latent_dim):
    big = latent(9, latent_dim, 42)
    assert big.shape == (9, latent_dim) and big.dtype == np.float32
    for n in (0, 1, 4):
        np.testing.assert_array_equal(latent(n, latent_dim, 42), big[:n], err_msg=f"n={n} latent_dim={latent_dim}")


def test_values_look_standard_normal_and_seeds_differ():
    z = latent(2000, 100, 7)  # 200k values: mean and std within ~0.01 of (0, 1)
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1.0) < 0.01
    assert not np.array_equal(latent(4, 8, 0), latent(4, 8, 1))


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seeds_outside_64_bits_are_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        latent(1, 4, seed)


@pytest.mark.parametrize("n, latent_dim", [(-1, 4), (1, 0)])
def test_bad_sizes_are_refused(n, latent_dim):
    with pytest.raises(ValueError, match="latent_dim"):
        latent(n, latent_dim, 0)
