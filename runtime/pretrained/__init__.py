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


def option(verb: str):
    """The ``--pretrained NAME`` option of a command that takes a MODEL.onnx (``verb``: what it does)."""
    import click

    return click.option("--pretrained", "pretrained_name", type=click.Choice(NAMES), default=None,
                        help=f"{verb} a generator shipped with onnxgan instead of MODEL.onnx (mnist: a conditional "
                             "MLP).")


def model_or_pretrained(model: str | None, name: str | None) -> str:
    """The model file a command samples: MODEL.onnx or ``--pretrained NAME`` (exactly one of them)."""
    if (model is None) == (name is None):
        raise UserError("give a MODEL.onnx or --pretrained NAME (one of them)")
    return model if model is not None else str(path(name))


def path(name: str) -> Path:
    """The shipped model.onnx called ``name`` (one of NAMES)."""
    if name not in NAMES:
        raise UserError(f"no pretrained model {name!r}; onnxgan ships {', '.join(NAMES) or 'none'}")
    return FOLDER / f"{name}.onnx"
