"""Every numeric option of gan-train is checked for range and finiteness in one place (train/config.py's
NUMBER_BOUNDS), before a run folder exists (issue 24: ``--bn-momentum nan`` trained to the end with NaN
statistics in every checkpoint; ``--gamma nan`` trained with the penalty off and wrote NaN into
config.json). And a batch that BatchNorm cannot normalise is refused up front."""
from __future__ import annotations

import dataclasses

import pytest

from kit import TRAIN, assert_refused, image_data, invoke
from onnxgan.train.cli import MODEL_OPTIONS
from onnxgan.train.cli import main as gan_train
from onnxgan.train.config import NUMBER_BOUNDS, ModelConfig, TrainConfig


def numeric_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.type in ("int", "float")}


def test_every_numeric_field_has_a_bound():
    assert {"--bn-momentum", "--gamma", "--gp-weight", "--r1", "--lr"} <= set(FLOAT_OPTIONS)  # the cases
    assert numeric_fields(ModelConfig) | numeric_fields(TrainConfig) == set(NUMBER_BOUNDS)


FLOAT_OPTIONS = sorted({"--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig) if f.type == "float"}
                       | {"--" + name.replace("_", "-") for name, field in MODEL_OPTIONS.items()
                          if next(f for f in dataclasses.fields(ModelConfig) if f.name == field).type == "float"})


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return image_data(tmp_path / "data.npy")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("option", FLOAT_OPTIONS)
def test_a_float_option_that_is_not_finite_is_refused(data, tmp_path, option, value):
    result = invoke(gan_train, ["--data", data, *TRAIN, option, value, "--out", tmp_path / "run"])
    assert_refused(result, "gan-train", 2, "must be a finite number")
    assert option in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value, words", [
    ("--bn-momentum", "0", "--bn-momentum must be a finite number in (0, 1], got 0.0"),
    ("--bn-momentum", "1.5", "--bn-momentum must be a finite number in (0, 1]"),
    ("--d-mbstd", "65", "--d-mbstd must be an integer in [0, 64]"),
    ("--d-mbstd", "1", "0 (off) or 2..64"),
    ("--eval-samples", "99", "--eval-samples must be an integer in [100, 100000]"),
])
def test_out_of_range_numbers_are_refused(data, tmp_path, option, value, words):
    result = invoke(gan_train, ["--data", data, *TRAIN, option, value, "--out", tmp_path / "run"])
    assert_refused(result, "gan-train", 2, words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model", ["mlp-bn", "dcgan"])
def test_batch_size_1_with_batch_norm_is_one_line_and_leaves_no_run_folder(data, tmp_path, model):
    args = ["--data", data, *TRAIN, "--model", model, "--batch-size", 1]
    if model == "dcgan":
        args += ["--g-hidden", "16,8", "--d-hidden", "8,16"]
    result = invoke(gan_train, args)  # the default run folder: runs/<model>-<timestamp>
    assert_refused(result, "gan-train", 2, "need batches of at least 2 samples")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_batch_size_1_without_batch_norm_trains(data, tmp_path):
    result = invoke(gan_train, ["--data", data, *TRAIN, "--model", "mlp", "--batch-size", 1, "--out", tmp_path / "run"])
    assert result.exit_code == 0, result.output
