"""gan-sample and gan-eval on odd files (issue 13, classes 6 and 7): what is printed from a model is
escaped, metadata of the wrong type or depth is one line, a shard index or a shard folder that was
tampered with is redone, named pipes are refused, and SIGTERM cleans up like Ctrl-C (a real process)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from kit import TINY_MODEL, assert_refused, conditional_model, invoke, snapshot, with_metadata
from onnxgan.runtime.cli import main as gan_sample
from onnxgan.runtime.eval_cli import main as gan_eval


@pytest.fixture
def conditional(tmp_path) -> Path:
    return conditional_model(tmp_path / "c.onnx")[0]


def test_class_names_with_newlines_and_escapes_are_printed_escaped(tmp_path, conditional):
    model = with_metadata(conditional, tmp_path / "odd.onnx", class_names=json.dumps(["a\nb", "\x1b[2J", "c"]))
    result = invoke(gan_sample, [model, "--label", "9", "-o", tmp_path / "s.png"])
    assert_refused(result, "gan-sample", 2, "a\\nb, \\x1b[2J, c")
    assert "\x1b" not in result.stderr


# (id, metadata key, JSON text, words in the one line)
METADATA = [
    ("class-names-a-string", "class_names", json.dumps("abc"), "class_names"),
    ("class-names-nested-deep", "class_names", "[" * 100_000 + "]" * 100_000, "class_names"),
    ("model-name-nested-deep", "model", "[" * 100_000 + "]" * 100_000, "model"),
]


@pytest.mark.parametrize("name, key, text, words", METADATA, ids=[row[0] for row in METADATA])
def test_metadata_of_the_wrong_type_or_depth_is_one_line(tmp_path, conditional, name, key, text, words):
    model = with_metadata(conditional, tmp_path / "bad.onnx", **{key: text})
    before = snapshot(tmp_path)
    assert_refused(invoke(gan_sample, [model, "-o", tmp_path / "s.png"]), "gan-sample", 2, words)
    assert_refused(invoke(gan_eval, [model, "-n", "10", "-o", tmp_path / "m.json"]), "gan-eval", 2, words)
    assert snapshot(tmp_path) == before


def test_an_unknown_key_nested_deep_is_ignored(tmp_path):
    """The contract ignores unknown keys; they are never parsed, so their depth cannot matter."""
    model = with_metadata(TINY_MODEL, tmp_path / "m.onnx", extra="[" * 100_000)
    result = invoke(gan_sample, [model, "-n", "4", "-o", tmp_path / "s.png"])
    assert result.exit_code == 0, result.output


def test_an_output_that_is_the_model_is_refused(tmp_path):
    model = tmp_path / "m.npz"  # an ONNX file under an output's name
    model.write_bytes(TINY_MODEL.read_bytes())
    before = snapshot(tmp_path)
    assert_refused(invoke(gan_sample, [model, "-o", model]), "gan-sample", 2, "is the input")
    assert snapshot(tmp_path) == before


# A file where a PNG shard's folder belongs is not the job's to delete (tests/attacks/test_data_loss.py).
@pytest.mark.parametrize("tamper", ["first-a-float", "first-out-of-range", "entry-a-list"])
def test_a_tampered_shard_index_or_shard_is_redone(tmp_path, tamper):
    job = tmp_path / "job"
    args = [TINY_MODEL, "-n", "6", "--shard-size", "3", "--format", "png", "-o", job]
    assert invoke(gan_sample, args).exit_code == 0
    good = snapshot(job)
    index = json.loads((job / "index.json").read_text())
    if tamper == "first-a-float":
        index["shards"][1]["first"] = 3.0
    elif tamper == "first-out-of-range":
        index["shards"][1]["first"] = 300
    else:
        index["shards"][1] = [3, 3]
    (job / "index.json").write_text(json.dumps(index))
    result = invoke(gan_sample, args)
    assert result.exit_code == 0, result.output
    assert "1 written" in result.stdout
    assert snapshot(job) == good


def test_a_named_pipe_as_the_model_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.onnx")
    for main, command in ((gan_sample, "gan-sample"), (gan_eval, "gan-eval")):
        assert_refused(invoke(main, [tmp_path / "pipe.onnx", "-o", tmp_path / "out.npz"]), command, 2,
                       "not a regular file")


def test_sigterm_during_a_folder_write_cleans_up_like_ctrl_c(tmp_path):
    """SIGTERM while gan-sample fills its staging folder: exit 143, one line, no staging folder left."""
    out = tmp_path / "pngs"
    process = subprocess.Popen([str(Path(sys.executable).parent / "gan-sample"), str(TINY_MODEL), "-n", "200000",
                                "-o", f"{out}/"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(any(p.iterdir()) for p in tmp_path.glob(".pngs.*")):  # the staging folder has PNGs
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() else ""
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 143, stderr
    assert stderr.splitlines() == ["gan-sample: error: terminated (SIGTERM)"], stderr
    assert list(tmp_path.iterdir()) == []
