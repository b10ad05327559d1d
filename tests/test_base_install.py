"""The base install (``pip install .``: numpy, onnxruntime, click, Pillow; no torch, no onnx) samples the
committed tiny model exactly. CI runs this file alone in such an environment, without conftest.py:

    pip install ".[test]" && python -m pytest --noconftest tests/test_base_install.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from onnxgan.runtime import Sampler
from onnxgan.runtime.cli import main as gan_sample

TINY_MODEL = Path(__file__).parent / "data" / "tiny_mlp.onnx"

# tests/data/make_tiny_model.py prints these: generate(latent(2, seed=0))[:, 0, 0, :4] from PyTorch's
# weights, as onnxruntime computed them when the file was made.
GOLDEN = np.array([[-0.1050466, -0.1387629, 0.2747968, 0.1034644],
                   [-0.0922592, 0.0163868, 0.2799346, 0.0986294]], dtype=np.float32)


def test_the_tiny_model_samples_its_golden_values():
    sampler = Sampler(TINY_MODEL, device="cpu")
    images = sampler.generate(sampler.latent(2, seed=0))  # (2, 1, 8, 8)
    np.testing.assert_allclose(images[:, 0, 0, :4], GOLDEN, atol=1e-6)
    pixels = sampler.sample(2, seed=0)
    assert pixels.shape == (2, 8, 8) and pixels.dtype == np.uint8


def test_gan_sample_writes_a_grid(tmp_path):
    result = CliRunner().invoke(gan_sample, [str(TINY_MODEL), "-n", "4", "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "grid.png").size == (38, 38)  # 2 x 2 cells of 16 px, 2 px padding


def test_the_quality_room_and_its_classifier_are_installed():
    from onnxgan.quality import Evaluator

    result = Evaluator.for_mnist().evaluate(np.zeros((10, 28, 28), np.uint8), seed=0)
    assert result["class_histogram"] and np.isfinite(result["fid"])
