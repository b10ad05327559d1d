"""Long names (issue 24, hostile use round three): a valid 250-byte output name is written, not refused
because of the temp or staging name added to it; a 256-byte name component and a path over 4096
characters are one line and exit 2 in every command, never a traceback, with nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit import TINY_MODEL, TRAIN, assert_refused, image_data, invoke, snapshot, tiny_config, write_checkpoint
from onnxgan.export.cli import main as gan_export
from onnxgan.files import NAME_MAX, atomic_write, new_folder, temp_prefix
from onnxgan.runtime.cli import main as gan_sample
from onnxgan.runtime.eval_cli import main as gan_eval
from onnxgan.runtime.web import main as gan_web
from onnxgan.train.cli import main as gan_train

LONG = "x" * 246  # + ".png" or ".onnx": a valid name of 250 or 251 bytes


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    write_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tiny_config("mlp"))
    image_data(tmp_path / "data.npy")
    return tmp_path


@pytest.mark.parametrize("main, args, output", [
    (gan_sample, [TINY_MODEL, "-n", 4, "-o", f"{LONG}.png"], f"{LONG}.png"),
    (gan_sample, [TINY_MODEL, "-n", 4, "-o", LONG + "d/"], LONG + "d"),  # a folder, staged beside itself
    (gan_sample, [TINY_MODEL, "-n", 4, "--shard-size", 2, "-o", LONG + "s/"], LONG + "s"),
    (gan_export, ["run", "-o", f"{LONG}.onnx", "--weights", "float32"], f"{LONG}.onnx"),
], ids=["sample-png", "sample-folder", "sample-shards", "export"])
def test_a_250_byte_output_name_is_written(folder, main, args, output):
    result = invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (folder / output).exists()
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temp or staging name left


@pytest.mark.parametrize("name", ["a" * 255, "é" * 127 + "a", "b" * 200])
def test_temp_names_fit_one_path_component(tmp_path, name):
    with atomic_write(tmp_path / name) as f:
        f.write(b"data")
        temps = [p.name for p in tmp_path.iterdir() if p.name != name]
    assert (tmp_path / name).read_bytes() == b"data"
    assert len(temps) == 1 and len(temps[0].encode()) <= NAME_MAX and temps[0].startswith(temp_prefix(name))
    with new_folder(tmp_path / (name[:-1] + "d")) as staging:
        assert len(staging.name.encode()) <= NAME_MAX


TOO_LONG = "y" * 256  # one component over NAME_MAX
DEEP = "/".join(["z" * 200] * 22)  # over 4096 characters


@pytest.mark.parametrize("bad", [TOO_LONG, DEEP], ids=["256-byte-component", "over-4096-characters"])
@pytest.mark.parametrize("main, command, args", [
    (gan_sample, "gan-sample", [TINY_MODEL, "-n", 4, "-o", "{bad}.png"]),
    (gan_sample, "gan-sample", ["{bad}.onnx", "-n", 4, "-o", "x.png"]),
    (gan_sample, "gan-sample", [TINY_MODEL, "-n", 4, "-o", "{bad}/"]),
    (gan_eval, "gan-eval", ["{bad}.onnx", "-n", 1000]),
    (gan_export, "gan-export", ["run", "-o", "{bad}.onnx"]),
    (gan_export, "gan-export", ["{bad}", "-o", "m.onnx"]),
    (gan_web, "gan-web", [TINY_MODEL, "-o", "{bad}"]),
    (gan_train, "gan-train", ["--data", "data.npy", *TRAIN, "--out", "{bad}"]),
    (gan_train, "gan-train", ["--data", "{bad}.npy", *TRAIN, "--out", "run2"]),
], ids=["sample-out", "sample-model", "sample-folder", "eval-model", "export-out", "export-source", "web-out",
        "train-out", "train-data"])
def test_a_name_the_os_refuses_is_one_line(folder, main, command, args, bad):
    before = snapshot(folder)
    assert_refused(invoke(main, [str(arg).format(bad=bad) for arg in args]), command, 2, "too long")
    assert snapshot(folder) == before
