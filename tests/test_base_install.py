"""The base install (``pip install .``: numpy, click, Pillow, tqdm and the native kernel; no torch, onnx or
onnxruntime) samples the committed tiny models (an MLP and a conv generator) exactly and the shipped pretrained MNIST
generator, and says in one line which extra to install for what needs onnxruntime (a graph the native
reader refuses, --backend onnxruntime, gan-eval's classifier). CI runs this file alone in such an environment, without conftest.py:

    pip install ".[test]" && python -m pytest --noconftest tests/test_base_install.py

In the full test environment the autouse fixture hides onnxruntime, so the same tests hold there.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from onnxgan import extras
from onnxgan.errors import UserError
from onnxgan.runtime import Sampler
from onnxgan.runtime.cli import main as gan_sample
from onnxgan.runtime.eval_cli import main as gan_eval

DATA = Path(__file__).parent / "data"
TINY_MODEL = DATA / "tiny_mlp.onnx"
# A conv generator (tiny_config("dcgan") of tests/kit.py, fresh seed-0 weights, exported by gan-export).
TINY_CONV_MODEL = DATA / "tiny_dcgan.onnx"
INSTALL_HINT = "pip install 'onnxgan[ort]' (CPU) or 'onnxgan[gpu]' (CUDA)"

# tests/data/make_tiny_model.py prints these: generate(latent(2, seed=0))[:, 0, 0, :4] from PyTorch's
# weights, as onnxruntime computed them when the file was made.
GOLDEN = np.array([[-0.1050466, -0.1387629, 0.2747968, 0.1034644],
                   [-0.0922592, 0.0163868, 0.2799346, 0.0986294]], dtype=np.float32)
# The same for tiny_dcgan.onnx, as onnxruntime 1.32.0 computed them when this test was written.
GOLDEN_CONV = np.array([[-0.1401756, 0.2628773, -0.4705432, 0.2659322],
                        [-0.1458172, 0.2424540, -0.4737607, 0.3039030]], dtype=np.float32)


@pytest.fixture(autouse=True)
def no_onnxruntime(monkeypatch):
    """``import onnxruntime`` fails, as in the base install (where it is simply absent)."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def test_onnxruntime_is_not_importable():
    with pytest.raises(ImportError):
        import onnxruntime  # noqa: F401


def test_the_tiny_model_samples_its_golden_values():
    sampler = Sampler(TINY_MODEL, device="cpu")
    assert sampler.info()["backend"] == "native"
    images = sampler.generate(sampler.latent(2, seed=0))  # (2, 1, 8, 8)
    np.testing.assert_allclose(images[:, 0, 0, :4], GOLDEN, atol=1e-6)
    pixels = sampler.sample(2, seed=0)
    assert pixels.shape == (2, 8, 8) and pixels.dtype == np.uint8


def test_the_conv_model_samples_its_golden_values(tmp_path):
    sampler = Sampler(TINY_CONV_MODEL, device="cpu")
    assert sampler.info()["backend"] == "native"
    images = sampler.generate(sampler.latent(2, seed=0))  # (2, 1, 8, 8)
    np.testing.assert_allclose(images[:, 0, 0, :4], GOLDEN_CONV, atol=1e-6)
    result = CliRunner().invoke(gan_sample, [str(TINY_CONV_MODEL), "-n", "4", "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "grid.png").size == (38, 38)


def refused_model(tmp_path) -> Path:
    """tiny_dcgan.onnx with its ConvTranspose ops renamed (same length, still valid ONNX): no reader runs it."""
    path = tmp_path / "unknown_op.onnx"
    data = TINY_CONV_MODEL.read_bytes()
    assert b"ConvTranspose" in data
    path.write_bytes(data.replace(b"ConvTranspose", b"ConvTransposX"))
    return path


def test_gan_sample_writes_a_grid(tmp_path):
    result = CliRunner().invoke(gan_sample, [str(TINY_MODEL), "-n", "4", "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "grid.png").size == (38, 38)  # 2 x 2 cells of 16 px, 2 px padding


def test_the_pretrained_mnist_generator_samples_64_digits(tmp_path):
    result = CliRunner().invoke(gan_sample, ["--pretrained", "mnist", "-n", "64", "-o", str(tmp_path / "digits.png")])
    assert result.exit_code == 0, result.output
    assert "native" in result.output
    assert Image.open(tmp_path / "digits.png").size == (8 * 58 + 2, 8 * 58 + 2)  # 8 x 8 cells of 56 px, 2 px padding
    sampler = Sampler.pretrained("mnist")
    info = sampler.info()
    assert (info["backend"], info["num_classes"], info["weights_dtype"]) == ("native", 10, "float16")
    sevens = sampler.sample(16, seed=3, labels=7)  # uint8 (16, 28, 28)
    assert sevens.shape == (16, 28, 28)
    assert 10 < sevens.mean() < 128 and sevens.std() > 40  # dark background, bright strokes: not blank, not noise


@pytest.mark.parametrize("args", [
    [None],
    [str(TINY_MODEL), "--backend", "onnxruntime"],
    [str(TINY_MODEL), "--device", "cuda"],
], ids=["refused-graph", "backend-onnxruntime", "device-cuda"])
def test_gan_sample_names_the_extra_for_what_needs_onnxruntime(tmp_path, args):
    args = [str(refused_model(tmp_path)) if arg is None else arg for arg in args]
    result = CliRunner().invoke(gan_sample, [*args, "-n", "4", "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and INSTALL_HINT in result.output, result.output
    assert not (tmp_path / "grid.png").exists()


def test_a_graph_the_native_reader_refuses_says_why(tmp_path):
    with pytest.raises(UserError, match=r"unknown_op.onnx: the native kernel cannot run it \(.*op 'ConvTransposX'.*\), "
                                         r"so this model needs onnxruntime"):
        Sampler(refused_model(tmp_path))


def test_gan_eval_names_the_extra(tmp_path):
    result = CliRunner().invoke(gan_eval, [str(TINY_MODEL), "-n", "10", "-o", str(tmp_path / "m.json")])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert "the quality metric" in result.output and INSTALL_HINT in result.output
    assert not (tmp_path / "m.json").exists()


def test_the_quality_room_ships_its_classifier_and_names_the_extra():
    from onnxgan.quality import Evaluator
    from onnxgan.quality.classifier import CLASSIFIER_PATH
    from onnxgan.quality.evaluator import REFERENCE_PATH

    assert CLASSIFIER_PATH.stat().st_size > 0 and REFERENCE_PATH.stat().st_size > 0
    with pytest.raises(UserError, match=r"^the quality metric .*needs onnxruntime, which this install lacks: "
                                        + r"pip install 'onnxgan\[ort\]'"):
        Evaluator.for_mnist()


def test_onnxruntime_and_onnxruntime_gpu_together_are_refused(monkeypatch):
    monkeypatch.setattr(extras, "installed_ort_wheels", lambda: ("onnxruntime", "onnxruntime-gpu"))
    with pytest.raises(UserError, match=r"^both onnxruntime and onnxruntime-gpu are installed; .* pip uninstall -y "
                                        r"onnxruntime onnxruntime-gpu, then pip install 'onnxgan\[ort\]'"):
        extras.onnxruntime("the onnxruntime backend")


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                    reason="torch is installed here; tests/test_launch.py hides it from the same commands")
@pytest.mark.parametrize("command", ["gan-train", "gan-export"])
@pytest.mark.parametrize("args", [["--help"], []])
def test_the_training_commands_name_their_extra(tmp_path, command, args):
    """The real base install's entry points: one line naming the extra (a 23-line traceback before)."""
    result = subprocess.run([str(Path(sys.executable).parent / command), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}: error: {command} needs ") and \
        lines[0].endswith("pip install torch 'onnxgan[train]'"), result.stderr
