"""Everything read back is validated (issue 13, class 7): a checkpoint's configs, counters and RNG states,
metrics.jsonl lines, and data that changed since the checkpoint. In-process (CliRunner); each fault is one
line and exit 2, or is handled.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kit import TRAIN, assert_refused, invoke, snapshot, tiny_config, write_checkpoint
from onnxgan.export.cli import main as gan_export
from onnxgan.train.cli import main as gan_train


def _set(*keys, value):
    """A change that sets state[k1][k2]... = value."""
    def change(state):
        for key in keys[:-1]:
            state = state[key]
        state[keys[-1]] = value
    return change


# (id, change to a good checkpoint's state, words in the one line)
CHECKPOINTS = [
    ("latent-dim-a-string", _set("model_config", "latent_dim", value="8"), "model_config.latent_dim is '8'"),
    ("latent-dim-a-bool", _set("model_config", "latent_dim", value=True), "model_config.latent_dim"),
    ("image-shape-of-floats", _set("model_config", "image_shape", value=[1.0, 8.0, 8.0]), "model_config.image_shape"),
    ("class-names-a-string", _set("model_config", "class_names", value="abc"), "model_config.class_names"),
    ("unknown-model-name", _set("model_config", "name", value="resnet"), "unknown model 'resnet'"),
    ("model-config-a-list", _set("model_config", value=[1, 2]), "model_config is not a record"),
    ("unknown-config-field", _set("model_config", "colour", value=1), "unknown ModelConfig fields"),
    ("lr-a-string", _set("train_config", "lr", value="fast"), "train_config.lr"),
    ("lr-out-of-range", _set("train_config", "lr", value=5.0), "--lr must be a finite number in (0, 1]"),
    ("negative-step", _set("step", value=-1), "step is -1"),
    ("step-a-float", _set("step", value=3.0), "step is 3.0"),
    ("epoch-a-string", _set("epoch", value="0"), "epoch is '0'"),
    ("rng-state-of-wrong-size", _set("rng", value=[{"cpu": torch.zeros(10, dtype=torch.uint8), "cuda": []}]), "rng"),
    ("rng-state-a-dict", _set("rng", value={"cpu": 1}), "rng"),
    ("rng-empty", _set("rng", value=[]), "rng"),
    ("G-a-list", _set("G", value=[1]), "G is a list"),
    ("best-fid-a-string", _set("best_fid", value="low"), "best_fid"),
]


@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> dict:
    path = write_checkpoint(tmp_path_factory.mktemp("good") / "good.pt", tiny_config("mlp"))
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("name, change, words", CHECKPOINTS, ids=[row[0] for row in CHECKPOINTS])
def test_a_checkpoint_with_a_bad_field_is_one_line(tmp_path, good_state, name, change, words):
    state = {**good_state, "model_config": dict(good_state["model_config"]),
             "train_config": dict(good_state["train_config"])}
    change(state)
    torch.save(state, tmp_path / "bad.pt")
    before = snapshot(tmp_path)
    assert_refused(invoke(gan_export, [tmp_path / "bad.pt", "-o", tmp_path / "m.onnx"]), "gan-export", 2, words)
    assert_refused(invoke(gan_train, ["--resume", tmp_path / "bad.pt", "--out", tmp_path / "run", "--steps", "9"]),
                   "gan-train", 2, words)
    assert snapshot(tmp_path) == before


def labelled_data(path: Path, classes: int) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, (64, 8, 8), dtype=np.uint8), labels=np.arange(64) % classes)
    return path


def test_resuming_after_the_data_gained_classes_is_one_line(tmp_path):
    data = labelled_data(tmp_path / "data.npz", 3)
    first = invoke(gan_train, ["--data", data, "--cond", *TRAIN, "--out", tmp_path / "run"])
    assert first.exit_code == 0, first.output
    labelled_data(data, 4)  # a fourth class arrives; the model's label embedding has three rows
    before = snapshot(tmp_path)
    assert_refused(invoke(gan_train, ["--resume", tmp_path / "run", "--steps", "4"]), "gan-train", 2,
                   "labels up to 3, the checkpoint's conditional model knows 3 classes")
    assert snapshot(tmp_path) == before


def test_metrics_lines_that_are_not_rows_are_dropped_on_resume(tmp_path):
    """Lines that are valid JSON but not rows of ours (a list, a number, a row with a text step) are
    dropped with the half-written ones, so the resumed run and its report see only good rows."""
    data = labelled_data(tmp_path / "data.npz", 2)
    first = invoke(gan_train, ["--data", data, *TRAIN, "--log-every", "1", "--out", tmp_path / "run"])
    assert first.exit_code == 0, first.output
    metrics = tmp_path / "run" / "metrics.jsonl"
    good = metrics.read_text().splitlines()
    metrics.write_text("\n".join([good[0], "[1, 2]", "7", '{"step": "2", "d_loss": 1}', "null", good[1]]) + "\n")
    resumed = invoke(gan_train, ["--resume", tmp_path / "run", "--steps", "4"])
    assert resumed.exit_code == 0, resumed.output
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert (tmp_path / "run" / "report.html").is_file()


def test_metrics_lines_that_are_not_utf8_are_dropped_on_resume(tmp_path):
    data = labelled_data(tmp_path / "data.npz", 2)
    assert invoke(gan_train, ["--data", data, *TRAIN, "--out", tmp_path / "run"]).exit_code == 0
    (tmp_path / "run" / "metrics.jsonl").write_bytes(b'{"step": 1}\n\xff\xfe\n')
    assert invoke(gan_train, ["--resume", tmp_path / "run", "--steps", "4"]).exit_code == 0
    rows = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()  # valid UTF-8 again
    assert rows[0] == '{"step": 1}' and all(line.startswith("{") for line in rows)
