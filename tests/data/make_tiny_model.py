"""Regenerate tests/data/tiny_mlp.onnx: an 8-16-32-64 MLP generator (1x8x8 images), seed 0, fp32.

    /work/venv/bin/python tests/data/make_tiny_model.py

It goes through the real exporter (checkpoint -> gan-export's code path), so the file is exactly what
gan-export writes for such a model. After regenerating, update the golden values in
tests/test_base_install.py with the numbers this script prints.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the kit's checkpoint writer (kit.py)

from kit import TINY_MODEL, tiny_config, write_checkpoint  # noqa: E402

from onnxgan.export.onnx_export import export_checkpoint  # noqa: E402
from onnxgan.files import atomic_write  # noqa: E402
from onnxgan.runtime import Sampler  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = write_checkpoint(Path(folder) / "tiny.pt", tiny_config("mlp"), seed=0, step=0)
        exported = export_checkpoint(checkpoint, "float32")
    with atomic_write(TINY_MODEL) as f:
        f.write(exported.data)
    sampler = Sampler(TINY_MODEL, backend="onnxruntime", device="cpu")
    image = sampler.generate(sampler.latent(2, seed=0))  # (2, 1, 8, 8)
    print(f"wrote {TINY_MODEL} ({len(exported.data)} bytes, max error vs PyTorch {exported.max_error:.2g})")
    print("golden generate(latent(2, seed=0))[:, 0, 0, :4]:", np.array2string(image[:, 0, 0, :4], precision=7,
                                                                               separator=", "))


if __name__ == "__main__":
    main()
