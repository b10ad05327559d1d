"""onnxgan: train GANs in PyTorch, export the generator to ONNX, sample it anywhere.

Subpackages: ``onnxgan.train`` (PyTorch, ``gan-train``), ``onnxgan.export`` (``gan-export``) and
``onnxgan.runtime`` (numpy + onnxruntime + the native kernel, ``gan-sample``). This top module holds
only what all three share and must stay free of torch.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("onnxgan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
