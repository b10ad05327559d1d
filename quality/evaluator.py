"""Score generated MNIST-shaped images against MNIST test: ``Evaluator.for_mnist().evaluate(images)``.

Everything is measured in the shipped classifier's penultimate features (classifier.py), so the
figures are comparable between onnxgan runs but NOT with FID/KID from Inception features in papers.
mnist_reference.npz (written by scripts/train_classifier.py) holds, for that exact classifier (its
SHA-256 is checked): the test set's feature mean and covariance, all 10,000 test features (float16) for
KID and precision/recall, the test set's predicted-class histogram, and real-vs-real floors: the same
figures for MNIST train subsets of several sizes n against test, since FID, precision and recall all
depend on n. A result reports the floor for the stored n nearest (in log scale) to its own.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from onnxgan.errors import UserError
from onnxgan.files import atomic_write

from . import metrics
from .classifier import IMAGE_SIDE, NUM_CLASSES, Classifier

REFERENCE_PATH = Path(__file__).parent / "mnist_reference.npz"
FLOOR_SIZES = (1000, 2000, 5000, 10000)
MIN_IMAGES = 10  # fewer leave the k-NN radii and the covariance meaningless
MIN_CLASS_SHARE = 0.02  # a class under 2% of samples (MNIST has 9-11% each) is a mode being lost
MIN_RECALL = 0.2  # real-vs-real recall is ~0.8 or more (see the floors); a collapsed G covers little


@dataclass(frozen=True)
class Reference:
    """MNIST test in the classifier's features, plus the real-vs-real floors (one entry per floor_n)."""

    mu: np.ndarray  # float64 (D,)
    cov: np.ndarray  # float64 (D, D)
    sample: np.ndarray  # float32 (10000, D): every test image's features, for KID and precision/recall,
    #                     rounded to float16 (as stored: half the file, far finer than the metrics need)
    class_histogram: np.ndarray  # float64 (10,): the classifier's predictions on the test set
    feature_rms: float  # sqrt(mean(test features^2)): KID divides features by it (see ``score``)
    test_accuracy: float
    classifier_sha256: str
    floor_n: np.ndarray  # int64 (K,); empty while the floors are being measured
    floor_fid: np.ndarray  # float64 (K,), likewise the rest
    floor_kid: np.ndarray
    floor_precision: np.ndarray
    floor_recall: np.ndarray
    floor_class_kl: np.ndarray

    def floors(self, n: int) -> dict[str, Any]:
        """The real-vs-real figures measured at the stored size nearest to n (log scale)."""
        if len(self.floor_n) == 0:
            return {}
        i = int(np.argmin(np.abs(np.log(self.floor_n) - np.log(n))))
        return {"fid_floor": float(self.floor_fid[i]), "kid_floor": float(self.floor_kid[i]),
                "precision_floor": float(self.floor_precision[i]), "recall_floor": float(self.floor_recall[i]),
                "class_kl_floor": float(self.floor_class_kl[i]), "floor_n": int(self.floor_n[i])}


def load_reference(path: Path = REFERENCE_PATH) -> Reference:
    try:
        with np.load(path, allow_pickle=False) as data:
            values = {f.name: data[f.name] for f in fields(Reference)}
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"{path}: cannot read the MNIST reference statistics ({e}); reinstall onnxgan or run "
                        "scripts/train_classifier.py --reference-only") from None
    values["test_accuracy"], values["feature_rms"] = float(values["test_accuracy"]), float(values["feature_rms"])
    values["sample"] = values["sample"].astype(np.float32)
    values["classifier_sha256"] = str(values["classifier_sha256"])
    return Reference(**values)


def save_reference(reference: Reference, path: Path = REFERENCE_PATH) -> None:
    buffer = io.BytesIO()
    arrays = {f.name: np.asarray(getattr(reference, f.name)) for f in fields(Reference)}
    np.savez_compressed(buffer, **{**arrays, "sample": reference.sample.astype(np.float16)})
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def score(features: np.ndarray, logits: np.ndarray, reference: Reference, requested_labels: np.ndarray | None = None,
          seed: int = 0, real_radii: dict[tuple[int, int], np.ndarray] | None = None) -> dict[str, Any]:
    """Every figure for one set of images given as features (N, D) and logits (N, 10).

    Precision and recall compare equal-sized sets: both are cut (seeded) to min(N, 10000) points.
    ``real_radii``: a cache of the real subsets' k-NN radii by (size, seed), filled here; an Evaluator
    keeps one, so scoring the same n again (every evaluation in training) skips a quarter of the work.
    KID's kernel (x.y / D + 1)^3 is made for features of about unit size (Inception's); these are
    ~3x larger, which would weigh the cubic term ~100x more, so KID sees features / feature_rms.
    """
    n = len(features)
    precision, recall = equal_size_precision_recall(reference.sample, features, seed, real_radii)
    histogram = metrics.class_histogram(logits, NUM_CLASSES)
    result: dict[str, Any] = {
        "n": n,
        "fid": metrics.fid(*metrics.mean_cov(features), reference.mu, reference.cov),
        "kid": metrics.kid(features / reference.feature_rms, reference.sample / reference.feature_rms, seed=seed),
        "precision": precision, "recall": recall,
        "class_histogram": [round(float(share), 6) for share in histogram],
        "class_kl": metrics.class_kl(histogram, reference.class_histogram),
        "rarest_class": int(np.argmin(histogram)), "rarest_class_share": float(histogram.min()),
    }
    if requested_labels is not None:
        result["conditional_accuracy"] = metrics.conditional_accuracy(logits, requested_labels)
    result.update(reference.floors(n))
    return result


def equal_size_precision_recall(real: np.ndarray, features: np.ndarray, seed: int,
                                real_radii: dict[tuple[int, int], np.ndarray] | None = None) -> tuple[float, float]:
    """Precision and recall of ``features`` (N, D) against ``real`` (M, D), both cut (seeded) to
    min(N, M) points, since both figures depend on the set sizes. ``real_radii`` caches the real
    subset's k-NN radii by (size, seed), filled here."""
    n, size = len(features), min(len(features), len(real))
    # Separate streams: the real subset depends on (size, seed) only, so its radii can be cached.
    real = real[np.random.default_rng([seed, 0]).choice(len(real), size, replace=False)]
    fake = features[np.random.default_rng([seed, 1]).choice(n, size, replace=False)] if size < n else features
    cache = {} if real_radii is None else real_radii
    if (size, seed) not in cache:
        cache[size, seed] = metrics.knn_radii(real)
    return metrics.precision_recall(real, fake, real_radii=cache[size, seed])


def build_reference(classifier: Classifier, test_images: np.ndarray, test_labels: np.ndarray,
                    train_images: np.ndarray, seed: int = 0) -> Reference:
    """The reference for ``classifier`` from uint8 MNIST test (10000, 28, 28) with labels, and the floors
    from seeded train subsets of each FLOOR_SIZES size scored against it."""
    test_features, test_logits = classifier.features(test_images)
    empty = np.empty(0)
    reference = Reference(
        *metrics.mean_cov(test_features), sample=test_features.astype(np.float16).astype(np.float32),
        class_histogram=metrics.class_histogram(test_logits, NUM_CLASSES),
        feature_rms=float(np.sqrt(np.mean(test_features.astype(np.float64) ** 2))),
        test_accuracy=metrics.conditional_accuracy(test_logits, test_labels), classifier_sha256=classifier.sha256,
        floor_n=np.empty(0, np.int64), floor_fid=empty, floor_kid=empty, floor_precision=empty,
        floor_recall=empty, floor_class_kl=empty)
    subset = np.random.default_rng(seed).permutation(len(train_images))[: max(FLOOR_SIZES)]
    train_features, train_logits = classifier.features(train_images[subset])  # the first n make each subset
    floors = [score(train_features[:n], train_logits[:n], reference, seed=seed) for n in FLOOR_SIZES]
    return replace(reference, floor_n=np.array(FLOOR_SIZES, np.int64),
                   **{f"floor_{key}": np.array([f[key] for f in floors], np.float64)
                      for key in ("fid", "kid", "precision", "recall", "class_kl")})


class Evaluator:
    """The classifier and the reference it was measured with; ``evaluate`` scores a batch of images."""

    def __init__(self, classifier: Classifier, reference: Reference):
        if classifier.sha256 != reference.classifier_sha256:
            raise UserError("the MNIST reference statistics were measured with another classifier file; "
                            "run scripts/train_classifier.py --reference-only (or reinstall onnxgan)")
        self.classifier, self.reference = classifier, reference
        self._real_radii: dict[tuple[int, int], np.ndarray] = {}  # see ``score``

    @classmethod
    def for_mnist(cls, threads: int | None = None) -> "Evaluator":
        """The classifier and reference shipped in the package (threads: onnxruntime intra-op threads)."""
        return cls(Classifier(threads=threads), load_reference())

    def evaluate(self, images: np.ndarray, requested_labels: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
        """uint8 images (N, H, W) or (N, H, W, C) -> a JSON-ready dict of figures.

        28x28 grey images get everything (``score``); any other shape gets pixel statistics only and
        a ``not_computed`` entry saying why. ``requested_labels`` int (N,): the classes a conditional
        G was asked for, adding ``conditional_accuracy``. ``seed`` fixes the subsets KID and
        precision/recall draw, so one set of images always gives the same figures.
        """
        requested_labels = check_images(images, requested_labels)
        n = len(images)
        grey = images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images
        if grey.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            shape = "x".join(str(s) for s in images.shape[1:])
            return {"n": n, "image_shape": list(images.shape[1:]), **pixel_statistics(images),
                    "not_computed": f"FID, KID, precision/recall and the class figures need 28x28 grey images "
                                    f"(the MNIST classifier's input); these images are {shape}"}
        features, logits = self.classifier.features(grey)
        return {**score(features, logits, self.reference, requested_labels, seed, self._real_radii),
                "image_shape": list(images.shape[1:])}


def check_images(images: np.ndarray, requested_labels: np.ndarray | None = None) -> np.ndarray | None:
    """Refuse what no evaluator scores: not uint8 (N, H, W) or (N, H, W, C), fewer than MIN_IMAGES
    images, requested labels of the wrong shape or type; returns the labels as an array (or None)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise UserError(f"images must be a uint8 array (N, H, W) or (N, H, W, C), got "
                        f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}")
    n = len(images)
    if n < MIN_IMAGES:
        raise UserError(f"scoring needs at least {MIN_IMAGES} images (1000 or more for stable figures), got {n}")
    if requested_labels is not None:
        requested_labels = np.asarray(requested_labels)
        if requested_labels.shape != (n,) or requested_labels.dtype.kind not in "iu":
            raise UserError(f"requested_labels must be integers of shape ({n},), got "
                            f"{requested_labels.dtype} {requested_labels.shape}")
    return requested_labels


def pixel_statistics(images: np.ndarray) -> dict[str, float]:
    """What any uint8 images (N, ...) allow without a classifier: pixel mean and std (0..255), and the
    mean RMS distance between image i and image i + N/2 (near 0 when G draws one image for every z)."""
    x = images.reshape(len(images), -1).astype(np.float32)  # (N, pixels)
    half = len(x) // 2
    spread = np.sqrt(((x[:half] - x[half : 2 * half]) ** 2).mean(axis=1)).mean()
    return {"pixel_mean": float(x.mean()), "pixel_std": float(x.std()), "pair_rms_distance": float(spread)}


def mode_collapse_warnings(result: dict[str, Any], min_class_share: float = MIN_CLASS_SHARE,
                           min_recall: float = MIN_RECALL) -> list[str]:
    """One line per sign of mode collapse in an ``evaluate`` result: each class under ``min_class_share``
    of the samples (MNIST's class figures), and recall under ``min_recall`` (in the classifier's or, for
    any data, Inception's features). Empty when there is none (or no such figures)."""
    rare = [f"{digit} ({share:.1%})" for digit, share in enumerate(result.get("class_histogram", ()))
            if share < min_class_share]
    warnings = [f"class{'es' if len(rare) > 1 else ''} {', '.join(rare)} under {min_class_share:.0%} of the samples "
                "(MNIST has about 10% each): G is losing modes"] if rare else []
    if result.get("recall", 1.0) < min_recall:
        floor = f" (real-vs-real {result['recall_floor']:.2f})" if "recall_floor" in result else ""
        warnings.append(f"recall {result['recall']:.2f} is under {min_recall}{floor}: the samples cover little "
                        f"of {result.get('real', 'MNIST')}'s variety (mode collapse)")
    return warnings


def summary(result: dict[str, Any]) -> str:
    """One short line for a progress display, e.g. ``FID 12.3 (floor 0.9) KID 0.0101 P 0.71 R 0.45``."""
    if "fid" not in result:
        return f"pixel std {result['pixel_std']:.1f} pair distance {result['pair_rms_distance']:.1f}"
    floor = f" (floor {result['fid_floor']:.2f})" if "fid_floor" in result else ""
    line = f"FID {result['fid']:.2f}{floor} KID {result['kid']:.4f} P {result['precision']:.2f} R {result['recall']:.2f}"
    if "rarest_class_share" in result:
        line += f" rarest {result['rarest_class_share']:.1%}"
    if "conditional_accuracy" in result:
        line += f" acc {result['conditional_accuracy']:.1%}"
    return line
