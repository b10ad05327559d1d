"""The shipped MNIST classifier (mnist_classifier.onnx) run with onnxruntime on the CPU; no torch.
onnxruntime comes from an extra (onnxgan.extras): without it, building a Classifier is a one-line error.

scripts/train_classifier.py trains it and writes the file. Graph contract: input ``pixels`` float32
(N, 1, 28, 28) in [0, 1]; outputs ``features`` float32 (N, 128), the post-ReLU penultimate layer that
FID, KID and precision/recall are measured in, and ``logits`` float32 (N, 10) for the digits 0..9.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from onnxgan.errors import UserError
from onnxgan.extras import onnxruntime

CLASSIFIER_PATH = Path(__file__).parent / "mnist_classifier.onnx"
IMAGE_SIDE = 28
NUM_CLASSES = 10
FEATURE_DIM = 128
INPUT, FEATURES, LOGITS = "pixels", "features", "logits"
BATCH = 1000  # images per onnxruntime call: bounds memory (conv activations ~ 1000 x 32 x 28 x 28 floats)


class Classifier:
    """``features(images)`` -> (penultimate features, logits) for uint8 MNIST-shaped images."""

    def __init__(self, path: Path = CLASSIFIER_PATH, threads: int | None = None):
        try:
            data = path.read_bytes()
        except OSError as e:
            raise UserError(f"{path}: cannot read the MNIST classifier ({e.strerror or e}); reinstall onnxgan "
                            "or run scripts/train_classifier.py") from None
        self.sha256 = hashlib.sha256(data).hexdigest()
        ort = onnxruntime("the quality metric (FID etc.: its MNIST classifier runs on onnxruntime)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # CPU only: the classifier is small, and a CUDA session would cost more to start than it saves.
        self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, 28, 28) -> (features float32 (N, FEATURE_DIM), logits float32 (N, 10))."""
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise UserError(f"the MNIST classifier takes uint8 images of shape (N, {IMAGE_SIDE}, {IMAGE_SIDE}), "
                            f"got {images.dtype} {images.shape}")
        outputs = [self._session.run([FEATURES, LOGITS], {INPUT: to_pixels(images[i : i + BATCH])})
                   for i in range(0, len(images), BATCH)]
        if not outputs:
            return np.empty((0, FEATURE_DIM), np.float32), np.empty((0, NUM_CLASSES), np.float32)
        return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs])


def to_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> the graph's input, float32 (N, 1, 28, 28) in [0, 1] (training uses the same)."""
    return (images.astype(np.float32) / 255.0)[:, None]
