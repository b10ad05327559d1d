"""onnxgan.quality: the metric math on seeded synthetic features, the shipped classifier on MNIST test,
and the Evaluator end to end (real test images near the floor, noise far above it, other shapes)."""
from __future__ import annotations

import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

from onnxgan.errors import UserError
from onnxgan.quality import Evaluator, metrics, mode_collapse_warnings, summary
from onnxgan.quality.classifier import Classifier
from onnxgan.quality.evaluator import load_reference


def gaussian(n: int, dim: int = 16, shift: float = 0.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, dim)) * scale + shift).astype(np.float32)


def fid_of(a: np.ndarray, b: np.ndarray) -> float:
    return metrics.fid(*metrics.mean_cov(a), *metrics.mean_cov(b))


# ---- metric math ----------------------------------------------------------------------------------

def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    a = gaussian(2000)
    assert fid_of(a, a) == pytest.approx(0.0, abs=1e-6)
    shifts = [fid_of(a, gaussian(2000, shift=s, seed=1)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert shifts == sorted(shifts) and shifts[0] < 0.1
    # A mean shift of s in each of 16 dimensions adds 16 s^2 to the distance.
    assert shifts[3] == pytest.approx(16 * 4.0, rel=0.05)


def test_fid_matches_the_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(3)
    var1, var2 = rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 2.0, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert metrics.fid(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-9)


def test_fid_sees_a_spread_change_and_survives_singular_covariances():
    assert fid_of(gaussian(2000), gaussian(2000, scale=2.0, seed=1)) > 10 * fid_of(gaussian(2000), gaussian(2000, seed=1))
    flat = np.zeros((50, 16), np.float32)  # rank-0 covariance: eigh clips, no NaN
    assert np.isfinite(fid_of(flat, gaussian(50)))


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two():
    same = [metrics.kid(gaussian(300, seed=s), gaussian(300, seed=s + 100), seed=s, subsets=3) for s in range(6)]
    assert abs(np.mean(same)) < 0.01 and min(same) < 0 < max(same)  # unbiased: it scatters around 0
    assert metrics.kid(gaussian(300), gaussian(300, shift=1.0, seed=1), subsets=3) > 0.5


def test_precision_and_recall():
    real = gaussian(1000)
    both = metrics.precision_recall(real, gaussian(1000, seed=1))
    assert both[0] > 0.7 and both[1] > 0.7
    # A collapsed G: every sample near one real point -> precise but no recall.
    collapsed = real[:1] + gaussian(1000, scale=0.01, seed=2)
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.05
    # Far-off samples: no precision.
    assert metrics.precision_recall(real, gaussian(1000, shift=10.0, seed=3))[0] == 0.0


def test_knn_radii_use_the_kth_other_point():
    points = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]], np.float32)
    np.testing.assert_array_equal(metrics.knn_radii(points, k=1), [1.0, 1.0, 4.0, 9.0, 16.0])  # squared
    np.testing.assert_array_equal(metrics.knn_radii(points, k=3), [36.0, 25.0, 9.0, 25.0, 81.0])
    with pytest.raises(ValueError, match="more than 3 points"):
        metrics.knn_radii(points[:3])


def test_class_histogram_kl_and_accuracy():
    logits = np.eye(4)[[0, 0, 1, 2, 3, 3, 3, 3]]  # predicted classes 0 0 1 2 3 3 3 3
    histogram = metrics.class_histogram(logits, 4)
    np.testing.assert_allclose(histogram, [0.25, 0.125, 0.125, 0.5])
    uniform = np.full(4, 0.25)
    assert metrics.class_kl(uniform, uniform) == 0.0
    expected = 0.25 * np.log(1) + 2 * 0.125 * np.log(0.5) + 0.5 * np.log(2)
    assert metrics.class_kl(histogram, uniform) == pytest.approx(expected)
    assert metrics.class_kl(np.array([0.5, 0.5, 0, 0]), uniform) == pytest.approx(np.log(2))  # finite
    assert metrics.conditional_accuracy(logits, np.array([0, 0, 1, 2, 3, 3, 0, 0])) == 0.75


# ---- the shipped classifier and reference ---------------------------------------------------------

def test_the_package_ships_its_files_and_imports_no_torch():
    files = importlib.resources.files("onnxgan.quality")
    assert (files / "mnist_classifier.onnx").is_file() and (files / "mnist_reference.npz").is_file()
    assert len((files / "mnist_classifier.onnx").read_bytes()) < 2 * 2**20
    code = "import sys, onnxgan.quality, onnxgan.runtime.eval_cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0, "onnxgan.quality imported torch"


@pytest.fixture(scope="module")
def mnist_test():
    from onnxgan.train.data import load_mnist  # the bundled data; torch is not imported by it

    return load_mnist("t10k")


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator.for_mnist()


def test_classifier_accuracy_on_a_seeded_test_subset(mnist_test):
    subset = np.random.default_rng(0).choice(len(mnist_test.images), 1000, replace=False)
    features, logits = Classifier().features(mnist_test.images[subset, 0])
    assert features.shape == (1000, 128) and features.dtype == np.float32 and logits.shape == (1000, 10)
    assert (logits.argmax(axis=1) == mnist_test.labels[subset]).mean() >= 0.98


def test_classifier_refuses_other_shapes():
    with pytest.raises(UserError, match=r"uint8 images of shape \(N, 28, 28\)"):
        Classifier().features(np.zeros((2, 28, 28), np.float32))


def test_the_shipped_reference_belongs_to_the_shipped_classifier():
    reference = load_reference()
    assert reference.classifier_sha256 == Classifier().sha256
    assert reference.test_accuracy >= 0.99
    assert reference.sample.shape == (10000, 128) and reference.class_histogram.sum() == pytest.approx(1.0)
    assert list(reference.floor_n) == sorted(reference.floor_n) and (np.diff(reference.floor_fid) < 0).all()


def test_real_test_images_score_near_the_floor_and_noise_far_above(evaluator, mnist_test):
    subset = np.random.default_rng(1).choice(len(mnist_test.images), 1000, replace=False)
    real = evaluator.evaluate(mnist_test.images[subset, 0], requested_labels=mnist_test.labels[subset])
    assert real["n"] == 1000 and real["floor_n"] == 1000
    # Test images against test statistics share samples, so they may come in a little under the
    # train-vs-test floor; they must not come in far above it.
    assert real["fid"] < 2 * real["fid_floor"] + 0.5
    assert real["precision"] > 0.6 and real["recall"] > 0.6 and real["conditional_accuracy"] > 0.98
    assert real["rarest_class_share"] > 0.07 and real["class_kl"] < 0.01
    assert mode_collapse_warnings(real) == []
    noise = evaluator.evaluate(np.random.default_rng(2).integers(0, 256, (1000, 28, 28), dtype=np.uint8))
    assert noise["fid"] > 20 * real["fid"] + 10 and noise["recall"] < 0.2 and noise["precision"] < 0.2
    assert any("recall" in line for line in mode_collapse_warnings(noise))
    assert summary(noise).startswith("FID ")


def test_one_digit_over_and_over_is_mode_collapse(evaluator, mnist_test):
    ones = mnist_test.images[mnist_test.labels == 1][:500, 0]
    result = evaluator.evaluate(ones, seed=3)
    assert result["rarest_class_share"] < 0.02 and result["class_kl"] > 1.0
    warnings = mode_collapse_warnings(result)
    assert warnings[0].startswith("classes 0 (0.") and "9 (0." in warnings[0] and "1 (" not in warnings[0]
    assert evaluator.evaluate(ones, seed=3) == result  # seeded subsets: the same figures every time


def test_other_shapes_get_pixel_figures_and_a_reason(evaluator):
    images = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    result = evaluator.evaluate(images)
    assert "fid" not in result and "28x28 grey" in result["not_computed"] and result["image_shape"] == [32, 32, 3]
    assert 0 < result["pixel_std"] and mode_collapse_warnings(result) == []
    assert "fid" in evaluator.evaluate(np.zeros((20, 28, 28, 1), np.uint8))  # (N, H, W, 1) is grey too


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((20, 28, 28), np.float32), None, "must be a uint8 array"),
    (np.zeros((20, 784), np.uint8), None, "must be a uint8 array"),
    (np.zeros((5, 28, 28), np.uint8), None, "at least 10 images"),
    (np.zeros((20, 28, 28), np.uint8), np.zeros(19, np.int64), r"integers of shape \(20,\)"),
])
def test_bad_inputs_are_user_errors(evaluator, images, labels, message):
    with pytest.raises(UserError, match=message):
        evaluator.evaluate(images, requested_labels=labels)
