"""Outputs never overwrite inputs (issue 13, class 2): the output is compared with every input by device
and inode, so another spelling of the name, a hard link or a symbolic link is refused too."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from kit import TINY_MODEL, assert_refused, invoke, snapshot, tiny_config, write_checkpoint
from onnxgan.export.cli import main as gan_export
from onnxgan.runtime.eval_cli import main as gan_eval


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A run (run/checkpoints/last.pt), a model (m.onnx) and links to both, in the working folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tiny_config("mlp"))
    (tmp_path / "m.onnx").write_bytes(TINY_MODEL.read_bytes())
    os.link(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "hard.onnx")
    os.symlink(tmp_path / "m.onnx", tmp_path / "soft.json")
    return tmp_path


# (id, main, command, arguments)
ROWS = [
    ("export-onto-its-checkpoint", gan_export, "gan-export", ["run", "-o", "run/checkpoints/last.pt"]),
    ("export-onto-its-checkpoint-spelt-otherwise", gan_export, "gan-export",
     ["run/checkpoints/last.pt", "-o", "run/../run/checkpoints/./last.pt"]),
    ("export-onto-a-hard-link-of-its-checkpoint", gan_export, "gan-export", ["run", "-o", "hard.onnx"]),
    ("eval-onto-its-model", gan_eval, "gan-eval", ["m.onnx", "-n", "10", "-o", "m.onnx"]),
    ("eval-onto-a-symbolic-link-to-its-model", gan_eval, "gan-eval", ["m.onnx", "-n", "10", "-o", "soft.json"]),
]


@pytest.mark.parametrize("name, main, command, args", ROWS, ids=[row[0] for row in ROWS])
def test_an_output_that_is_an_input_is_refused_untouched(folder, name, main, command, args):
    before = snapshot(folder)
    assert_refused(invoke(main, args), command, 2, "is the input")
    assert snapshot(folder) == before
