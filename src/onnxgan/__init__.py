"""onnxgan: train GANs in PyTorch, export the generator to ONNX, sample it anywhere.

Subpackages: ``onnxgan.train`` (PyTorch, ``gan-train``), ``onnxgan.export`` (``gan-export``),
``onnxgan.runtime`` (numpy + onnxruntime + the native kernel, ``gan-sample``) and ``onnxgan.quality``
(the MNIST classifier metric and Inception FID, numpy + onnxruntime), each a folder at the repository root
(pyproject's ``wheel.packages``). This top module holds only what they all share (``onnxgan.datasets``, the
data readers, included) and must stay free of torch.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("onnxgan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
