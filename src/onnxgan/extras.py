"""onnxruntime, imported on first use: the base install (``pip install onnxgan``) samples every generator
gan-export writes (MLP and conv) with the native kernel alone; ``--backend onnxruntime``, ``--device
cuda``, graphs the native reader refuses and the quality metric (its classifier) need onnxruntime from
an extra.

pyproject's extras: ``onnxgan[ort]`` (onnxruntime, CPU) or ``onnxgan[gpu]`` (onnxruntime-gpu, CUDA),
never both: the two wheels install one ``onnxruntime`` module over each other, so what runs is whichever
came last, or a broken mix of files once either is uninstalled. Both present is refused here.
"""
from __future__ import annotations

import functools
from importlib import metadata
from types import ModuleType

from .errors import UserError

INSTALL_ORT = "pip install 'onnxgan[ort]' (CPU) or 'onnxgan[gpu]' (CUDA)"
INSTALL_TRAIN = "pip install torch 'onnxgan[train]'"
ORT_WHEELS = ("onnxruntime", "onnxruntime-gpu")
# The modules that only an extra brings -> how to install it (onnxgan.launch names it when one is missing).
EXTRA_MODULES = {"torch": INSTALL_TRAIN, "onnx": INSTALL_TRAIN, "matplotlib": INSTALL_TRAIN,
                 "onnxruntime": INSTALL_ORT}


def onnxruntime(purpose: str) -> ModuleType:
    """The onnxruntime module, or a one-line ``UserError`` saying that ``purpose`` (e.g. "the quality
    metric") needs it and which extra to install; also refused: both wheels in one environment."""
    installed = installed_ort_wheels()
    if len(installed) > 1:
        raise UserError(f"both {' and '.join(installed)} are installed; they overwrite one module and break each "
                        f"other: pip uninstall -y {' '.join(installed)}, then {INSTALL_ORT}")
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"{purpose} needs onnxruntime, which this install lacks: {INSTALL_ORT}") from None
    return ort


@functools.cache
def installed_ort_wheels() -> tuple[str, ...]:
    """The onnxruntime wheels (ORT_WHEELS) installed in this environment, by their distribution names."""
    found = []
    for name in ORT_WHEELS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return tuple(found)
