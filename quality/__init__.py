"""Sample quality for MNIST-shaped generators, torch-free: a shipped classifier and numpy metrics.

    from onnxgan.quality import Evaluator, mode_collapse_warnings
    evaluator = Evaluator.for_mnist()
    result = evaluator.evaluate(images)          # uint8 (N, 28, 28) -> fid, kid, precision, recall, ...
    for line in mode_collapse_warnings(result): print("warning:", line)

The figures use the classifier's penultimate features, so they are NOT comparable with Inception FID.
"""
from .evaluator import Evaluator, mode_collapse_warnings, summary

__all__ = ["Evaluator", "mode_collapse_warnings", "summary"]
