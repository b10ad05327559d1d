"""Sample quality, torch-free: a shipped MNIST classifier and numpy metrics for MNIST-shaped generators,
and pytorch-fid's Inception-v3 features for any images (inception.py, inception_scores.py).

    from onnxgan.quality import Evaluator, mode_collapse_warnings
    evaluator = Evaluator.for_mnist()
    result = evaluator.evaluate(images)          # uint8 (N, 28, 28) -> fid, kid, precision, recall, ...
    for line in mode_collapse_warnings(result): print("warning:", line)

The classifier's figures use its penultimate features, so they are NOT comparable with Inception FID;
InceptionEvaluator's are (docs/inception.md).
"""
from .evaluator import Evaluator, mode_collapse_warnings, summary

__all__ = ["Evaluator", "mode_collapse_warnings", "summary"]
