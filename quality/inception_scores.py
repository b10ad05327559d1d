"""Standard scores for any images: FID, KID and precision/recall against a real data set in pytorch-fid's
Inception-v3 pool3 features (inception.py), the yardstick of published figures.

    scores = InceptionEvaluator(InceptionFeatures(weights), real_images, "my-photos/")
    result = scores.evaluate(images)    # uint8 (N, H, W) or (N, H, W, C) -> fid, kid, precision, recall, ...

The real set's features, mean and covariance are computed once, when the evaluator is made. KID uses
the raw features, as its paper and other tools do. Precision and recall compare equal-sized sets (see
evaluator.equal_size_precision_recall); FID's bias falls with N, so compare figures at equal N.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import metrics
from .evaluator import check_images, equal_size_precision_recall
from .inception import InceptionFeatures

FEATURES_NAME = "Inception-v3 pool3 (pytorch-fid)"


class InceptionEvaluator:
    """Scores images against ``real_images`` (uint8 (M, H, W) or (M, H, W, C)) named ``real_name``."""

    def __init__(self, network: InceptionFeatures, real_images: np.ndarray, real_name: str):
        check_images(real_images)
        self.network, self.real_name = network, real_name
        self.real = network.features(real_images)  # (M, 2048)
        self.mu, self.cov = metrics.mean_cov(self.real)
        self._real_radii: dict[tuple[int, int], np.ndarray] = {}  # see equal_size_precision_recall

    def evaluate(self, images: np.ndarray, requested_labels: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
        """uint8 images -> a JSON-ready dict: n, fid, kid, precision, recall and what they were measured in.

        ``requested_labels`` is checked like Evaluator.evaluate's and otherwise unused: Inception features
        say nothing about a data set's own classes. ``seed`` fixes the subsets of KID and precision/recall.
        """
        check_images(images, requested_labels)
        features = self.network.features(images)
        precision, recall = equal_size_precision_recall(self.real, features, seed, self._real_radii)
        return {"n": len(images), "fid": metrics.fid(*metrics.mean_cov(features), self.mu, self.cov),
                "kid": metrics.kid(features, self.real, seed=seed), "precision": precision, "recall": recall,
                "image_shape": list(images.shape[1:]), "features": FEATURES_NAME, "real": self.real_name,
                "real_n": len(self.real), "inception_weights": self.network.source}

