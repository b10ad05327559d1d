"""gan-eval through CliRunner on hand-built generators of MNIST shape (unconditional and conditional),
on the committed 8x8 tiny model (pixel figures only), and its refusals (one line, exit 2)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from onnxgan.quality import Evaluator
from onnxgan.runtime import Sampler
from onnxgan.runtime.contract import ModelInfo
from onnxgan.runtime.eval_cli import main as gan_eval

from kit import foreign_model

BIN = Path(sys.executable).parent  # the installed entry points live beside the interpreter


def run_eval(*args):
    return CliRunner().invoke(gan_eval, [str(arg) for arg in args])


def mnist_shaped_model(path: Path, num_classes: int = 0, class_names: tuple[str, ...] = ()) -> Path:
    """A contract-following G built by hand (no torch to import): z [+ embedding[label]] -> Gemm -> Tanh
    -> 1x28x28, random weights (a collapsed, untrained G)."""
    rng = np.random.default_rng(num_classes)
    latent_dim, embedding_dim = 4, 3 if num_classes else 0
    nodes = [helper.make_node("Gemm", ["ze" if num_classes else "z", "weight", "bias"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Reshape", ["t", "shape"], ["image"])]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent_dim])]
    weights = [numpy_helper.from_array(rng.normal(size=(784, latent_dim + embedding_dim)).astype(np.float32), "weight"),
               numpy_helper.from_array(np.zeros(784, np.float32), "bias"),
               numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64), "shape")]
    if num_classes:
        nodes[:0] = [helper.make_node("Gather", ["embedding", "label"], ["e"], axis=0),
                     helper.make_node("Concat", ["z", "e"], ["ze"], axis=1)]
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
        weights.append(numpy_helper.from_array(rng.normal(size=(num_classes, embedding_dim)).astype(np.float32),
                                               "embedding"))
    graph = helper.make_graph(nodes, "mnist_shaped", inputs,
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    info = ModelInfo(model="hand-mlp", latent_dim=latent_dim, image_shape=(1, 28, 28), num_classes=num_classes,
                     class_names=class_names, training_step=0, package_version="0")
    helper.set_model_props(model, info.to_metadata())
    onnx.save(model, path)
    return path


def test_scores_an_mnist_shaped_model_prints_a_table_and_writes_json(tmp_path):
    model = mnist_shaped_model(tmp_path / "model.onnx")
    result = run_eval(model, "-n", 300, "--seed", 1, "-o", tmp_path / "out" / "metrics.json")
    assert result.exit_code == 0, result.output
    for text in ("FID", "KID", "precision", "recall", "real-vs-real (n=1000)", "class histogram",
                 "NOT comparable with Inception FID", "300 samples, seed 1"):
        assert text in result.stdout
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected = Evaluator.for_mnist().evaluate(Sampler(model).sample(300, seed=1), seed=1)
    assert {key: saved[key] for key in expected} == expected
    assert saved["n"] == 300 and saved["fid_floor"] < saved["fid"] and "conditional_accuracy" not in saved
    assert saved["warnings"] and "Inception" in saved["note"]  # an untrained G collapses: warnings say so
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json"]  # no temp file left


def test_conditional_digit_models_get_conditional_accuracy(tmp_path):
    model = mnist_shaped_model(tmp_path / "c10.onnx", 10, tuple(str(d) for d in range(10)))
    result = run_eval(model, "-n", 200, "-o", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "m.json").read_text())
    assert 0.0 <= saved["conditional_accuracy"] <= 1.0 and "conditional accuracy" in result.stdout
    images = Sampler(model).sample(200, labels=np.arange(200) % 10)  # balanced requests, 20 per class
    assert saved["fid"] == Evaluator.for_mnist().evaluate(images)["fid"]


def test_conditional_models_of_other_classes_say_why_there_is_no_accuracy(tmp_path):
    result = run_eval(mnist_shaped_model(tmp_path / "c3.onnx", 3, ("a", "b", "c")), "-n", 30)
    assert result.exit_code == 0, result.output
    assert "conditional accuracy not computed: the model's 3 classes (a, b, c) are not the digits" in result.stdout


def test_other_image_shapes_get_pixel_figures_and_the_reason(tmp_path, tiny_model):
    result = run_eval(tiny_model, "-n", 50, "-o", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert "not computed: FID, KID, precision/recall and the class figures need 28x28 grey images" in result.stdout
    saved = json.loads((tmp_path / "m.json").read_text())
    assert "fid" not in saved and saved["image_shape"] == [8, 8] and saved["pixel_std"] > 0


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp, model: [tmp / "missing.onnx"], "no such file"),
    (lambda tmp, model: [foreign_model(tmp / "foreign.onnx")], "not an onnxgan generator"),
    (lambda tmp, model: [model, "-n", 5], "-n"),
    (lambda tmp, model: [model, "--backend", "tpu"], "--backend"),
    (lambda tmp, model: [model, "-o", tmp], "is a folder"),
    (lambda tmp, model: [model, "-n", 20, "-o", tmp / "file.txt" / "m.json"], "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_model, make_args, message):
    (tmp_path / "file.txt").write_text("not a folder")
    result = run_eval(*make_args(tmp_path, tiny_model))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("gan-eval: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".onnx") == ["file.txt"]  # nothing written


def test_installed_gan_eval_command(tmp_path, tiny_model):
    ok = subprocess.run([BIN / "gan-eval", tiny_model, "-n", "20"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "not computed" in ok.stdout, ok.stderr
    bad = subprocess.run([BIN / "gan-eval", tmp_path / "none.onnx"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("gan-eval: error: ") and bad.stderr.count("\n") == 1


def test_pretrained_scores_the_shipped_generator(tmp_path):
    """gan-eval --pretrained mnist: the same figures as gan-eval on the shipped file's path."""
    from onnxgan.runtime import pretrained

    by_name = run_eval("--pretrained", "mnist", "-n", 1000, "-o", tmp_path / "a.json")
    by_path = run_eval(pretrained.path("mnist"), "-n", 1000, "-o", tmp_path / "b.json")
    assert by_name.exit_code == 0 and by_path.exit_code == 0, by_name.output + by_path.output
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json"))
    assert a["fid"] == b["fid"] and a["conditional_accuracy"] > 0.9
    both = run_eval(pretrained.path("mnist"), "--pretrained", "mnist")
    assert both.exit_code == 2 and "one of them" in both.stderr
