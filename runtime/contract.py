"""The model.onnx contract in code (docs/onnx-contract.md): tensor names, the metadata record, and the
checks every reader makes before it runs anything.

``gan-export`` writes ``ModelInfo.to_metadata()``; every reader rebuilds the record with
``ModelInfo.from_metadata`` and checks the graph's interface with ``check_interface``. The native
reader (cpp/src/metadata.cpp, cpp/src/graph_interface.cpp) makes the same checks in the same order and
refuses with the same words: ``<subject> '<name>' <verdict>: <detail>``, the verdicts in ``VERDICTS``
(tests/test_contract.py feeds both readers the same broken files).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from onnxgan.errors import UserError
from onnxgan.images import TANH_RANGE

from .latent import LATENT_RNG
from .onnx_meta import ELEM_FLOAT, ELEM_INT64, Header, Value

FORMAT_VERSION = 1
INPUT_Z, INPUT_LABEL, OUTPUT_IMAGE = "z", "label", "image"
WEIGHTS_DTYPES = ("float32", "float16")
# The one optional key (docs/onnx-contract.md): how a shipped model was trained, a JSON object with preset,
# steps, fid, fid_floor, eval_samples, eval_seed (scripts/make_pretrained.py). Readers ignore it, as every
# key they do not know, so it changes no verdict.
TRAINING_KEY = "training"
VERDICTS = ("is missing", "has the wrong type", "is out of range", "is not supported", "disagrees with the graph")
_MAX_SIDE = 2**31 - 1  # latent_dim, image sides and num_classes fit an int32
_MAX_INT64 = 2**63 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def refuse(source: str, subject: str, name: str, verdict: str, detail: str) -> NoReturn:
    """Raise the contract's refusal, e.g. ``m.onnx: metadata 'latent_dim' is out of range: ...``."""
    raise UserError(f"{source}: {subject} '{name}' {verdict}: {detail}")


@dataclass(frozen=True)
class ModelInfo:
    """What a model.onnx says about itself: every field is one metadata_props key (a JSON text), all
    required, checked in this order after ``onnxgan_format``."""

    model: str
    latent_dim: int
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    class_names: tuple[str, ...]
    training_step: int
    package_version: str
    weights_dtype: str = "float32"
    value_range: tuple[float, float] = TANH_RANGE
    latent_rng: str = LATENT_RNG

    def to_metadata(self) -> dict[str, str]:
        fields = {"onnxgan_format": FORMAT_VERSION, **dataclasses.asdict(self)}
        return {key: json.dumps(value) for key, value in fields.items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> "ModelInfo":
        """Check and parse metadata_props; the first fault is a ``UserError`` naming ``source``.

        Each key in turn: present, of its JSON type (strict JSON, finite numbers), in range. Unknown
        keys are ignored, so a later format may add keys without breaking older readers.
        """
        read = _Reader(props, source)
        version = read.integer("onnxgan_format", -_MAX_INT64, _MAX_INT64)
        if version != FORMAT_VERSION:
            refuse(source, "metadata", "onnxgan_format", "is not supported", f"format {version} is not the one "
                   f"this onnxgan reads ({FORMAT_VERSION}); upgrade onnxgan or re-export")
        model = read.string("model")
        latent_dim = read.integer("latent_dim", 1, _MAX_SIDE)
        image_shape = read.integers("image_shape", 3, 1, _MAX_SIDE)
        num_classes = read.integer("num_classes", 0, _MAX_SIDE)
        class_names = read.strings("class_names")
        if len(class_names) not in (0, num_classes):
            refuse(source, "metadata", "class_names", "is out of range", f"{len(class_names)} names for "
                   f"{num_classes} classes (it must be none or one per class)")
        training_step = read.integer("training_step", 0, _MAX_INT64)
        package_version = read.string("package_version")
        weights_dtype = read.string("weights_dtype")
        if weights_dtype not in WEIGHTS_DTYPES:
            refuse(source, "metadata", "weights_dtype", "is not supported", f"{weights_dtype!r} (float32 or float16)")
        value_range = read.numbers("value_range")
        if (len(value_range) != 2 or not all(abs(bound) <= _FLOAT32_MAX for bound in value_range)
                or not np.float32(value_range[0]) < np.float32(value_range[1])):
            refuse(source, "metadata", "value_range", "is out of range",
                   "it must be [low, high], float32 numbers with low < high")
        latent_rng = read.string("latent_rng")
        if latent_rng != LATENT_RNG:
            refuse(source, "metadata", "latent_rng", "is not supported", f"{latent_rng!r} is unknown to this "
                   f"onnxgan (it knows {LATENT_RNG}); upgrade onnxgan")
        return cls(model, latent_dim, tuple(image_shape), num_classes, tuple(class_names), training_step,
                   package_version, weights_dtype, (value_range[0], value_range[1]), latent_rng)


def check_interface(header: Header, info: ModelInfo, source: str) -> None:
    """The graph's inputs and output are the ones the metadata promises, checked in this order: z, the
    label input against num_classes, no other input, then the one output image against image_shape."""
    inputs = {value.name: value for value in header.inputs}
    z, label = inputs.get(INPUT_Z), inputs.get(INPUT_LABEL)
    if z is None:
        refuse(source, "input", INPUT_Z, "is missing", "the contract's latent input is z, float32 (N, latent_dim)")
    if z.elem_type != ELEM_FLOAT or len(z.dims) != 2:
        refuse(source, "input", INPUT_Z, "has the wrong type", "expected float32 (N, latent_dim)")
    if z.dims[1] != info.latent_dim:
        refuse(source, "metadata", "latent_dim", "disagrees with the graph",
               f"{info.latent_dim}, the graph's z is {_dims_text(z)}")
    if (label is not None) != (info.num_classes > 0):
        has = "a" if label is not None else "no"
        refuse(source, "metadata", "num_classes", "disagrees with the graph",
               f"{info.num_classes}, but the graph has {has} label input")
    if label is not None and (label.elem_type != ELEM_INT64 or len(label.dims) != 1):
        refuse(source, "input", INPUT_LABEL, "has the wrong type", "expected int64 (N,)")
    for value in header.inputs:
        if value.name not in (INPUT_Z, INPUT_LABEL):
            refuse(source, "input", value.name, "is not supported", "the contract's inputs are z and label")
    image = {value.name: value for value in header.outputs}.get(OUTPUT_IMAGE)
    if image is None:
        refuse(source, "output", OUTPUT_IMAGE, "is missing", "the contract's output is image, float32 (N, C, H, W)")
    for value in header.outputs:
        if value.name != OUTPUT_IMAGE:
            refuse(source, "output", value.name, "is not supported", "the contract's only output is image")
    if image.elem_type != ELEM_FLOAT or len(image.dims) != 4:
        refuse(source, "output", OUTPUT_IMAGE, "has the wrong type", "expected float32 (N, C, H, W)")
    if image.dims[1:] != info.image_shape:
        refuse(source, "metadata", "image_shape", "disagrees with the graph",
               f"{list(info.image_shape)}, the graph's image is {_dims_text(image)}")


def _dims_text(value: Value) -> str:
    return "(" + ", ".join("N" if i == 0 and d is None else "?" if d is None else str(d)
                           for i, d in enumerate(value.dims)) + ")"


class _Reader:
    """Typed reads of metadata_props values (JSON texts); each fault is the contract's refusal."""

    def __init__(self, props: dict[str, str], source: str):
        self.props, self.source = props, source

    def _json(self, key: str, expected: str) -> Any:
        if key not in self.props:
            detail = ("not an onnxgan generator; make one with gan-export" if key == "onnxgan_format"
                      else "re-export the model with gan-export")
            refuse(self.source, "metadata", key, "is missing", detail)
        try:
            return json.loads(self.props[key], parse_constant=_not_json)
        except (ValueError, RecursionError):  # not JSON (NaN and Infinity are not), or nested too deep
            self._wrong_type(key, expected)

    def _wrong_type(self, key: str, expected: str) -> NoReturn:
        refuse(self.source, "metadata", key, "has the wrong type", f"expected {expected}")

    def integer(self, key: str, low: int, high: int) -> int:
        value = self._json(key, "an integer")
        if not _is_integer(value):
            self._wrong_type(key, "an integer")
        if not low <= value <= high:
            refuse(self.source, "metadata", key, "is out of range", f"it must be {low}..{high}")
        return value

    def integers(self, key: str, count: int, low: int, high: int) -> list[int]:
        values = self._json(key, "a list of integers")
        if not isinstance(values, list) or not all(_is_integer(value) for value in values):
            self._wrong_type(key, "a list of integers")
        if len(values) != count or not all(low <= value <= high for value in values):
            refuse(self.source, "metadata", key, "is out of range", f"it must be {count} integers in {low}..{high}")
        return values

    def numbers(self, key: str) -> list[float]:
        values = self._json(key, "a list of finite numbers")
        if not isinstance(values, list) or not all(_is_number(value) for value in values):
            self._wrong_type(key, "a list of finite numbers")
        return [float(value) for value in values]

    def string(self, key: str) -> str:
        value = self._json(key, "a string")
        if not isinstance(value, str):
            self._wrong_type(key, "a string")
        return value

    def strings(self, key: str) -> list[str]:
        values = self._json(key, "a list of strings")
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            self._wrong_type(key, "a list of strings")
        return values


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (Python reads a literal too large for a double as inf, or as a huge int)."""
    if not (_is_integer(value) or isinstance(value, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
