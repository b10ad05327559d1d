"""The model.onnx contract in code (docs/onnx-contract.md): tensor names and the metadata record.

``gan-export`` writes ``ModelInfo.to_metadata()``; every reader rebuilds the record with
``ModelInfo.from_metadata`` and so refuses foreign or broken files with one clear message.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from onnxgan.errors import UserError

from .latent import LATENT_RNG

FORMAT_VERSION = 1
INPUT_Z, INPUT_LABEL, OUTPUT_IMAGE = "z", "label", "image"
WEIGHTS_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class ModelInfo:
    """What a model.onnx says about itself: every field is one metadata_props key (a JSON text)."""

    model: str
    latent_dim: int
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    class_names: tuple[str, ...]
    training_step: int
    package_version: str
    weights_dtype: str = "float32"
    value_range: tuple[float, float] = (-1.0, 1.0)
    latent_rng: str = LATENT_RNG

    def to_metadata(self) -> dict[str, str]:
        fields = {"onnxgan_format": FORMAT_VERSION, **dataclasses.asdict(self)}
        return {key: json.dumps(value) for key, value in fields.items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> "ModelInfo":
        """Check and parse metadata_props; any fault is a ``UserError`` naming ``source``."""
        if "onnxgan_format" not in props:
            raise UserError(f"{source}: not an onnxgan generator (its ONNX metadata has no onnxgan_format); "
                            "make one with gan-export")
        try:
            values: dict[str, Any] = {key: json.loads(text) for key, text in props.items()}
        except json.JSONDecodeError as e:
            raise UserError(f"{source}: broken onnxgan metadata ({e})") from None
        if values["onnxgan_format"] != FORMAT_VERSION:
            raise UserError(f"{source}: model.onnx format {values['onnxgan_format']!r} is not supported by "
                            f"this onnxgan (reads {FORMAT_VERSION}); upgrade onnxgan or re-export")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in values]
        if missing:
            raise UserError(f"{source}: onnxgan metadata lacks {', '.join(missing)}; re-export it with gan-export")
        try:
            info = cls(
                model=str(values["model"]),
                latent_dim=_integer(values["latent_dim"]),
                image_shape=tuple(_integer(side) for side in values["image_shape"]),
                num_classes=_integer(values["num_classes"]),
                class_names=tuple(str(name) for name in values["class_names"]),
                training_step=_integer(values["training_step"]),
                package_version=str(values["package_version"]),
                weights_dtype=str(values["weights_dtype"]),
                value_range=tuple(float(bound) for bound in values["value_range"]),
                latent_rng=str(values["latent_rng"]),
            )
        except (TypeError, ValueError) as e:
            raise UserError(f"{source}: broken onnxgan metadata ({e})") from None
        info._check(source)
        return info

    def _check(self, source: str) -> None:
        problems = []
        if self.latent_dim < 1:
            problems.append(f"latent_dim {self.latent_dim}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            problems.append(f"image_shape {list(self.image_shape)}")
        if self.num_classes < 0 or len(self.class_names) not in (0, self.num_classes):
            problems.append(f"num_classes {self.num_classes} with {len(self.class_names)} class names")
        if len(self.value_range) != 2:
            problems.append(f"value_range {list(self.value_range)}")
        if self.weights_dtype not in WEIGHTS_DTYPES:
            problems.append(f"weights_dtype {self.weights_dtype!r}")
        if problems:
            raise UserError(f"{source}: broken onnxgan metadata: {', '.join(problems)}")
        if self.latent_rng != LATENT_RNG:
            raise UserError(f"{source}: the model's seeds use the latent RNG {self.latent_rng!r}, this onnxgan "
                            f"knows only {LATENT_RNG!r}; upgrade onnxgan")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value
