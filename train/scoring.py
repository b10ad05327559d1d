"""Which quality score a training run gets, chosen once before its first step: pytorch-fid's Inception
features against the training data itself (--eval-real; the standard FID for any images), the shipped
MNIST classifier on MNIST-shaped data, or none (with a note saying why and what to pass).

--eval-real auto (the default) scores in Inception features when the data is not MNIST-shaped and the
weights are given (--inception, or the file that ``--inception download`` cached); on demands them;
off never uses them. Inception features cost about 0.1 s per image on a 2-core CPU: the real side is
computed once here (--eval-samples training images, drawn with --seed), the generated side at every
evaluation, so lower --eval-samples or raise --eval-every to spend less.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from onnxgan.errors import UserError
from onnxgan.quality import Evaluator
from onnxgan.quality.inception import InceptionFeatures
from onnxgan.quality.inception_scores import InceptionEvaluator
from onnxgan.quality.inception_weights import how_to_get_weights, resolve_weights

from .config import ModelConfig, TrainConfig
from .data import ImageData

MNIST_SHAPE = (1, 28, 28)  # what the MNIST classifier reads


def inception_weights(model_config: ModelConfig, train_config: TrainConfig) -> Path | None:
    """The Inception weights the run scores with, or None when it does not use them; a ``UserError`` for
    --eval-real on without weights. gan-train calls it before it writes anything, and again to score."""
    mnist_shaped = model_config.image_shape == MNIST_SHAPE
    if not train_config.eval_every or train_config.eval_real == "off" or (train_config.eval_real == "auto"
                                                                          and mnist_shaped):
        return None
    weights = resolve_weights(train_config.inception or None)
    if weights is None and train_config.eval_real == "on":
        raise UserError(f"--eval-real on needs Inception weights: pass {how_to_get_weights()}")
    return weights


def quality_evaluator(model_config: ModelConfig, train_config: TrainConfig, data: ImageData):
    """An object with ``evaluate(uint8 images, requested_labels, seed) -> dict`` (fid, kid, precision,
    recall, ...), or None when the run gets no score."""
    if not train_config.eval_every:
        return None
    weights = inception_weights(model_config, train_config)
    if weights is not None:
        pick = np.sort(np.random.default_rng(train_config.seed).choice(
            len(data.images), min(train_config.eval_samples, len(data.images)), replace=False))
        print(f"scoring in Inception features against {len(pick)} images of {data.source} (once now, then "
              f"{train_config.eval_samples} samples every {train_config.eval_every} steps)", file=sys.stderr)
        return InceptionEvaluator(InceptionFeatures(weights), data.images[pick].transpose(0, 2, 3, 1), data.source)
    if model_config.image_shape == MNIST_SHAPE:
        return Evaluator.for_mnist()
    why = ("--eval-real off" if train_config.eval_real == "off"
           else f"for FID in Inception features against the training data pass {how_to_get_weights()}")
    print(f"note: no in-training quality score for {model_config.image_shape} images (the MNIST classifier reads "
          f"28x28 grey digits); {why}", file=sys.stderr)
    return None
