"""Generators shipped in the package, sampled right after ``pip install`` (the base install too: each is
an MLP that the native kernel runs): ``Sampler.pretrained("mnist")``, ``gan-sample --pretrained mnist``,
``gan-web --pretrained mnist``. Each file's optional ``training`` metadata key says how it was trained
(scripts/make_pretrained.py writes the files).
"""
from __future__ import annotations

from pathlib import Path

from onnxgan.errors import UserError

FOLDER = Path(__file__).parent
NAMES = tuple(sorted(path.stem for path in FOLDER.glob("*.onnx")))  # ("mnist",)


def path(name: str) -> Path:
    """The shipped model.onnx called ``name`` (one of NAMES)."""
    if name not in NAMES:
        raise UserError(f"no pretrained model {name!r}; onnxgan ships {', '.join(NAMES) or 'none'}")
    return FOLDER / f"{name}.onnx"
