"""benchmarks/stacked_mnist.py: the 1000-mode data set and its mode counter, on real MNIST."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import stacked_mnist  # noqa: E402

from kit import TINY_MODEL  # noqa: E402
from onnxgan.quality.classifier import Classifier  # noqa: E402
from onnxgan.train.data import load_mnist  # noqa: E402


def test_build_is_seeded_and_labels_are_the_three_digits():
    mnist = load_mnist("train")
    images, digits = mnist.images[:, 0], mnist.labels
    a, modes = stacked_mnist.build(images, digits, 50, seed=3)
    b, _ = stacked_mnist.build(images, digits, 50, seed=3)
    assert a.shape == (50, 28, 28, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    for image, mode in zip(a[:5], modes[:5]):  # each channel is an MNIST image whose digit the label names
        for channel, digit in enumerate((mode // 100, mode // 10 % 10, mode % 10)):
            matches = np.flatnonzero((images == image[..., channel]).all(axis=(1, 2)))
            assert matches.size and digit in digits[matches]


def test_real_stacked_digits_cover_the_modes_and_one_mode_does_not():
    mnist = load_mnist("train")
    images, modes = stacked_mnist.build(mnist.images[:, 0], mnist.labels, 6000, seed=0)
    real = stacked_mnist.mode_coverage(stacked_mnist.channel_digits(images, Classifier()))
    # 6000 draws from 1000 near-uniform modes miss about e^-6 of them; the classifier errs ~1% a digit.
    assert real["modes"] >= 985 and real["reverse_kl"] < 0.2
    collapsed = stacked_mnist.mode_coverage(np.tile([[1, 2, 3]], (100, 1)))
    assert collapsed["modes"] == 1 and np.isclose(collapsed["reverse_kl"], np.log(1000))


SCRIPT = Path(__file__).parents[1] / "benchmarks" / "stacked_mnist.py"


@pytest.mark.parametrize("args, words", [
    (["build", "{tmp}/x.npz", "--count", "-5"], "-5 is outside 1..10000000"),
    (["build", "{tmp}/missing/x.npz"], "its folder does not exist"),
    (["score", "{tmp}/m.onnx", "--samples", "0"], "0 is outside 1000..10000000"),  # 0 samples scored KL 0, "perfect"
    (["score", "{tmp}/m.onnx", "--seed", "-1"], "-1 is outside"),
    (["score", "{tmp}/missing.onnx"], "missing.onnx: no such file"),
    (["score", str(TINY_MODEL)], "Stacked MNIST needs (3, 28, 28)"),
])
def test_bad_arguments_are_one_error_line_and_exit_2(tmp_path, args, words):
    (tmp_path / "m.onnx").write_bytes(TINY_MODEL.read_bytes())
    result = subprocess.run([sys.executable, str(SCRIPT), *[a.format(tmp=tmp_path) for a in args]],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and words in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # nothing written
