"""The shipped MNIST generator (runtime/pretrained/mnist.onnx): both backends load it and agree, it draws
the digits it is asked for (the quality metric's classifier reads them), its metadata says how it was
trained, gan-sample and gan-web offer it, and scripts/make_pretrained.py makes such a file from a run.
(tests/test_base_install.py samples it without onnxruntime.)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kit import write_checkpoint
from onnxgan.errors import UserError
from onnxgan.quality.classifier import Classifier
from onnxgan.runtime import Sampler, pretrained
from onnxgan.runtime.cli import main as gan_sample
from onnxgan.runtime.contract import TRAINING_KEY
from onnxgan.runtime.onnx_meta import read_header
from onnxgan.runtime.web import main as gan_web

ROOT = Path(__file__).resolve().parents[1]
MNIST = pretrained.path("mnist")
TRAINING_FIELDS = {"preset", "steps", "fid", "fid_floor", "eval_samples", "eval_seed"}


def training_record(path: Path) -> dict:
    return json.loads(read_header(path.read_bytes()).metadata[TRAINING_KEY])


def test_it_ships_as_a_conditional_mlp_with_fp16_weights():
    assert pretrained.NAMES == ("mnist",)
    info = Sampler.pretrained("mnist", backend="native").info()
    assert (info["num_classes"], info["image_shape"], info["weights_dtype"]) == (10, [1, 28, 28], "float16")
    assert info["class_names"] == [str(d) for d in range(10)]
    assert MNIST.stat().st_size < 4e6


def test_both_backends_load_it_and_agree():
    native, ort = (Sampler.pretrained("mnist", backend=backend, device="cpu") for backend in ("native", "onnxruntime"))
    z, labels = native.latent(64, seed=5), native.labels(64, None)  # (64, 100), (64,) 0..9 cycling
    np.testing.assert_allclose(native.generate(z, labels), ort.generate(z, labels), atol=1e-4)


def test_it_draws_the_digits_asked_for():
    sampler = Sampler.pretrained("mnist")
    labels = np.repeat(np.arange(10), 30)  # (300,) 30 of each digit
    _, logits = Classifier().features(sampler.sample(300, seed=11, labels=labels))
    accuracy = (logits.argmax(axis=1) == labels).mean()
    assert accuracy >= 0.8, f"the classifier reads {accuracy:.1%} of the requested digits"


def test_its_metadata_says_how_it_was_trained():
    record = training_record(MNIST)
    assert set(record) == TRAINING_FIELDS
    assert record["steps"] == Sampler.pretrained("mnist").info()["training_step"] > 0
    assert record["eval_samples"] == 5000
    assert record["fid"] > record["fid_floor"] > 0


def test_gan_sample_takes_a_model_or_pretrained_not_both_nor_neither(tmp_path):
    for args in ([], [str(MNIST), "--pretrained", "mnist"]):
        result = CliRunner().invoke(gan_sample, [*args, "-o", str(tmp_path / "grid.png")])
        assert result.exit_code == 2 and "give a MODEL.onnx or --pretrained NAME" in result.output, result.output
    result = CliRunner().invoke(gan_sample, ["--pretrained", "nope", "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 2 and "'mnist'" in result.output, result.output
    with pytest.raises(UserError, match="no pretrained model 'nope'; onnxgan ships mnist"):
        Sampler.pretrained("nope")


def test_gan_web_offers_it(tmp_path):
    result = CliRunner().invoke(gan_web, ["--pretrained", "mnist", "-o", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    entries = json.loads((tmp_path / "site" / "models.json").read_text())
    assert [entry["file"] for entry in entries] == ["mnist.onnx"]
    assert (tmp_path / "site" / "mnist.onnx").read_bytes() == MNIST.read_bytes()
    result = CliRunner().invoke(gan_web, ["-o", str(tmp_path / "empty")])
    assert result.exit_code == 2 and not (tmp_path / "empty").exists(), result.output


@pytest.mark.slow
def test_make_pretrained_exports_and_records_the_training(tmp_path):
    from onnxgan.train.config import ModelConfig

    config = ModelConfig(name="mlp", latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16), image_shape=(1, 28, 28),
                         num_classes=10, class_names=tuple(str(d) for d in range(10))).resolved()
    checkpoint = write_checkpoint(tmp_path / "step.pt", config, step=3)
    output = tmp_path / "mnist.onnx"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_pretrained.py"), str(checkpoint),
                           "-o", str(output), "--weights", "float16"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "MB float16; float16 vs float32: " in done.stdout, done.stdout  # the pixel criterion's figures
    record = training_record(output)
    assert set(record) == TRAINING_FIELDS
    assert (record["preset"], record["steps"], record["eval_samples"]) == (None, 3, 5000)
    assert record["fid"] > record["fid_floor"] > 0  # an untrained G is far from MNIST
    assert Sampler(output).info()["weights_dtype"] == "float16"
