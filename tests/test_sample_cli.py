"""gan-sample through CliRunner (outputs, messages, all-or-nothing writes) and the three installed
commands end to end as real processes: gan-train -> gan-export -> gan-sample."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from onnxgan.runtime import Sampler
from onnxgan.runtime.sampler import slerp
from onnxgan.train.checkpoint import load_checkpoint

from kit import conditional_model, foreign_model, run_sample

BIN = Path(sys.executable).parent  # the installed entry points live beside the interpreter


def test_png_is_a_2x_grid(tmp_path, tiny_model):
    result = run_sample(tiny_model, "-n", 5, "--seed", 3, "-o", tmp_path / "grid.png")
    assert result.exit_code == 0, result.output
    sampler = Sampler(tiny_model)
    info = sampler.info()
    assert f"5 images, seed 3 ({info['backend']}, {info['provider']})" in result.stdout
    grid = np.asarray(Image.open(tmp_path / "grid.png"))  # 3 columns x 2 rows of 16 px cells, 2 px padding
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2)
    first = sampler.sample(1, seed=3)[0]
    np.testing.assert_array_equal(grid[2:18, 2:18], first.repeat(2, axis=0).repeat(2, axis=1))


def test_npz_holds_images_labels_and_z(tmp_path, tiny_model):
    assert run_sample(tiny_model, "-n", 6, "--seed", 9, "-o", tmp_path / "s.npz").exit_code == 0
    sampler = Sampler(tiny_model)
    with np.load(tmp_path / "s.npz") as saved:
        np.testing.assert_array_equal(saved["images"], sampler.sample(6, seed=9))
        np.testing.assert_array_equal(saved["z"], sampler.latent(6, seed=9))
        assert saved["labels"].shape == (0,) and saved["labels"].dtype == np.int64


@pytest.mark.parametrize("name", ["new/", "new", "empty"])
def test_a_folder_gets_one_png_per_image(tmp_path, tiny_model, name):
    (tmp_path / "empty").mkdir()
    result = run_sample(tiny_model, "-n", 3, "-o", f"{tmp_path}/{name}")
    assert result.exit_code == 0, result.output
    folder = tmp_path / name.rstrip("/")
    assert sorted(os.listdir(folder)) == ["000000.png", "000001.png", "000002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "000002.png")), Sampler(tiny_model).sample(3)[2])
    assert sorted(os.listdir(tmp_path)) == sorted({"empty", folder.name})  # no staging folder left


def test_interpolation_writes_a_strip_or_a_gif(tmp_path, tiny_model):
    assert run_sample(tiny_model, "--interpolate", 1, 2, "--steps", 5, "-o", tmp_path / "walk.png").exit_code == 0
    assert Image.open(tmp_path / "walk.png").size == (5 * 18 + 2, 18 + 2)
    assert run_sample(tiny_model, "--interpolate", 1, 2, "--steps", 4, "-o", tmp_path / "walk.gif").exit_code == 0
    gif = Image.open(tmp_path / "walk.gif")
    assert (gif.n_frames, gif.size) == (4, (256, 256))  # 8x8 frames, each pixel a 32x32 square
    frame = np.asarray(gif.convert("L"))
    np.testing.assert_array_equal(frame, Sampler(tiny_model).interpolate(1, 2, 4)[0].repeat(32, 0).repeat(32, 1))


def test_a_conditional_walk_keeps_one_class(tmp_path):
    model, _ = conditional_model(tmp_path / "c.onnx")
    sampler = Sampler(model)
    z = slerp(sampler.latent(1, 1)[0], sampler.latent(1, 2)[0], np.linspace(0.0, 1.0, 3))  # (3, latent_dim)
    for label, expected in ((None, 0), ("c2", 2), (1, 1)):  # every frame of the walk in one class
        np.testing.assert_array_equal(sampler.interpolate(1, 2, 3, label=label),
                                      sampler.pixels(z, np.full(3, expected)), err_msg=f"label {label}")
    assert run_sample(model, "--interpolate", 1, 2, "--steps", 3, "--label", "c2", "-o", tmp_path / "w.png").exit_code == 0
    assert run_sample(model, "--help").stdout.count("walks within one class") == 1


def test_conditional_labels_by_number_or_name(tmp_path):
    model, _ = conditional_model(tmp_path / "c.onnx")
    for label, expected in (("2", 2), ("c1", 1)):
        assert run_sample(model, "-n", 4, "--label", label, "-o", tmp_path / f"{label}.npz").exit_code == 0
        np.testing.assert_array_equal(np.load(tmp_path / f"{label}.npz")["labels"], [expected] * 4)
    assert run_sample(model, "-n", 4, "-o", tmp_path / "cycle.npz").exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "cycle.npz")["labels"], [0, 1, 2, 0])
    result = run_sample(model, "--label", "3", "-o", tmp_path / "x.png")
    assert result.exit_code == 2 and "no such class; use 0..2 or one of c0, c1, c2" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["missing.onnx", "-o", "x.png"], "missing.onnx: no such file"),
    (["text.onnx", "-o", "x.png"], "text.onnx: not an ONNX model ("),
    (["foreign.onnx", "-o", "x.png"], "not an onnxgan generator"),
    (["MODEL", "-n", "0", "-o", "x.png"], "0 is not in the range x>=1"),
    (["MODEL", "-n", "-3", "-o", "x.png"], "-3 is not in the range x>=1"),
    (["MODEL", "--label", "7", "-o", "x.png"], "this model is unconditional; drop --label"),
    (["MODEL", "-o", "file.txt/x.png"], "cannot write file.txt/x.png"),
    (["MODEL", "-o", "file.txt/sub/"], "-o file.txt/sub: cannot write there"),
    (["MODEL", "-o", "full"], "-o full: exists and is not an empty folder"),
    (["MODEL", "-o", "x.jpg"], "cannot write '.jpg' files; use OUT.png, OUT.npz or a folder"),
    (["MODEL", "--interpolate", "1", "2", "-o", "x.npz"], "with --interpolate use OUT.png, OUT.gif"),
    (["MODEL", "--interpolate", "1", "2", "-n", "4", "-o", "x.png"], "-n does not apply to --interpolate"),
    (["MODEL", "--interpolate", "1", "2", "--seed", "0", "-o", "x.png"], "--seed does not apply to --interpolate"),
    (["MODEL", "--seed", "-1", "-o", "x.png"], "--seed"),
    (["MODEL", "--backend", "tensorrt", "-o", "x.png"], "--backend"),
    (["MODEL"], "Missing option '-o'"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, tiny_model, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.onnx").write_text("not a model")
    (tmp_path / "file.txt").write_text("a file, not a folder")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("")
    foreign_model(tmp_path / "foreign.onnx")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = run_sample(*[str(tiny_model) if arg == "MODEL" else arg for arg in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("gan-sample: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_train_export_sample_end_to_end_with_the_installed_commands(tmp_path):
    def run(command, *args, code=0):
        done = subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == code, f"{command} {args}: {done.stderr}"
        return done

    run("gan-train", "--steps", 3, "--model", "mlp-bn", "--g-hidden", "16,32", "--d-hidden", "32,16",
        "--latent-dim", 8, "--batch-size", 16, "--out", tmp_path / "run")
    exported = run("gan-export", tmp_path / "run", "-o", tmp_path / "model.onnx").stdout
    weights = "G_ema" if "G_ema" in load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt") else "G"
    assert f"step 3, {weights} weights" in exported and "max abs error of float32 vs PyTorch" in exported
    assert " (auto: float16 vs float32 on 10,000 samples, " in exported  # the weights' dtype and why
    run("gan-sample", tmp_path / "model.onnx", "-n", 16, "-o", tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").size == (4 * 58 + 2, 4 * 58 + 2)  # 28 px digits, 2x, 2 px padding
    info = Sampler(tmp_path / "model.onnx").info()
    assert (info["model"], info["latent_dim"], info["image_shape"], info["training_step"]) == ("mlp-bn", 8, [1, 28, 28], 3)
    failed = run("gan-sample", tmp_path / "missing.onnx", "-o", tmp_path / "x.png", code=2)
    assert failed.stderr == f"gan-sample: error: {tmp_path / 'missing.onnx'}: no such file; give the path of a " \
                            "model.onnx written by gan-export\n"
    failed = run("gan-export", tmp_path / "nothing", "-o", tmp_path / "x.onnx", code=2)
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr


def test_a_thread_count_onnxruntime_would_hang_on_is_refused(tmp_path, tiny_model):
    """--threads 1000: the native kernel refused the count, auto read that as "not an MLP" and opened
    onnxruntime with 1000 threads, which never finished starting them."""
    result = run_sample(tiny_model, "-n", 4, "--threads", 1000, "-o", tmp_path / "s.png")
    assert result.exit_code == 2 and "threads must be in 1..256" in result.stderr, result.output
    assert not (tmp_path / "s.png").exists()
