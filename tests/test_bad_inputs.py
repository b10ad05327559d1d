"""The bad-input matrix: gan-train, gan-export, gan-sample and gan-eval as real processes on hostile inputs.

Every row: the documented exit code, exactly one line on stderr naming the problem, no traceback, no
hang, and nothing new or changed where the command was asked to write (each row runs in its own folder,
which holds a few files of its own: a_file, a_folder/, a_full_folder/keep.txt, my_run/ (a resumable run)
and mine.onnx). The rows run a few at a time in a thread pool (each is a process), then each row's test
checks its own result. Rows that need no process of their own live in tests/attacks/.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import zipfile
import zlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from kit import TRAIN, snapshot, tiny_config, write_checkpoint

pytestmark = pytest.mark.slow  # every row is a real process: about 2 minutes on 2 cores

BIN = Path(sys.executable).parent
ABSURD = str(10**12)
TIMEOUT_S = 300  # a row still running then has hung (a named pipe read forever, say): it fails

# (id, command, arguments ({name} = a file of the inputs fixture), exit code, words in the one stderr line)
ROWS = [
    ("train-missing-data", "gan-train", ["--data", "{missing}.npy", *TRAIN, "--out", "run"], 2, "no such file"),
    ("train-empty-data", "gan-train", ["--data", "{empty.npy}", *TRAIN, "--out", "run"], 2, "not a readable numpy"),
    ("train-truncated-data", "gan-train", ["--data", "{truncated.npy}", *TRAIN, "--out", "run"], 2, "truncated"),
    ("train-garbage-data", "gan-train", ["--data", "{garbage.npy}", *TRAIN, "--out", "run"], 2, "not a readable numpy"),
    ("train-data-is-a-model", "gan-train", ["--data", "{model.onnx}", *TRAIN, "--out", "run"], 2, "unknown data file kind"),
    ("train-labels-out-of-range", "gan-train", ["--data", "{bad_labels.npz}", "--cond", *TRAIN, "--out", "run"], 2,
     "label"),
    ("train-negative-steps", "gan-train", ["--data", "{data.npy}", *TRAIN, "--steps", "-5", "--out", "run"], 2, "--steps"),
    ("train-absurd-batch", "gan-train", ["--data", "{data.npy}", *TRAIN, "--batch-size", ABSURD, "--out", "run"], 2,
     "--batch-size"),
    ("train-absurd-latent", "gan-train", ["--data", "{data.npy}", *TRAIN, "--latent-dim", ABSURD, "--out", "run"], 2,
     "--latent-dim"),
    ("train-unknown-model", "gan-train", ["--data", "{data.npy}", *TRAIN, "--model", "resnet", "--out", "run"], 2,
     "unknown model 'resnet'"),
    ("train-out-is-a-file", "gan-train", ["--data", "{data.npy}", *TRAIN, "--out", "a_file"], 2, "is a file"),
    ("train-out-unwritable", "gan-train", ["--data", "{data.npy}", *TRAIN, "--out", "a_file/run"], 2, "cannot write"),
    ("train-resume-missing", "gan-train", ["--resume", "{missing}", "--steps", "5"], 2, "no such run directory"),
    ("train-resume-truncated", "gan-train", ["--resume", "{truncated.pt}", "--steps", "5", "--out", "run"], 2,
     "not a readable onnxgan checkpoint"),
    ("train-resume-garbage", "gan-train", ["--resume", "{garbage.pt}", "--steps", "5", "--out", "run"], 2,
     "not a readable onnxgan checkpoint"),
    ("train-resume-other-model", "gan-train", ["--resume", "{other_model.pt}", "--steps", "5", "--out", "run"], 2,
     "does not fit"),

    ("export-missing", "gan-export", ["{missing}.pt", "-o", "m.onnx"], 2, "no such run directory or checkpoint"),
    ("export-truncated", "gan-export", ["{truncated.pt}", "-o", "m.onnx"], 2, "not a readable onnxgan checkpoint"),
    ("export-garbage", "gan-export", ["{garbage.pt}", "-o", "m.onnx"], 2, "not a readable onnxgan checkpoint"),
    ("export-a-model", "gan-export", ["{model.onnx}", "-o", "m.onnx"], 2, "not a readable onnxgan checkpoint"),
    ("export-other-model", "gan-export", ["{other_model.pt}", "-o", "m.onnx"], 2, "does not fit its model config"),
    ("export-out-is-a-folder", "gan-export", ["{mlp.pt}", "-o", "a_folder"], 2, "is a folder"),
    ("export-out-names-a-folder", "gan-export", ["{mlp.pt}", "-o", "new_folder/"], 2, "is a folder"),
    ("export-out-unwritable", "gan-export", ["{mlp.pt}", "-o", "a_file/m.onnx"], 2, "cannot write"),

    ("sample-missing", "gan-sample", ["{missing}.onnx", "-o", "s.png"], 2, "no such file"),
    ("sample-empty", "gan-sample", ["{empty.onnx}", "-o", "s.png"], 2, "not an ONNX model ("),
    ("sample-truncated", "gan-sample", ["{truncated.onnx}", "-o", "s.png"], 2, "the file is cut short ("),
    ("sample-garbage", "gan-sample", ["{garbage.onnx}", "-o", "s.png"], 2, "not an ONNX model ("),
    ("sample-a-checkpoint", "gan-sample", ["{mlp.pt}", "-o", "s.png"], 2, "not an ONNX model ("),
    ("sample-foreign-onnx", "gan-sample", ["{foreign.onnx}", "-o", "s.png"], 2, "not an onnxgan generator"),
    ("sample-traversal-native", "gan-sample", ["{traversal.onnx}", "--backend", "native", "-o", "s.png"], 2,
     "external file"),
    ("sample-traversal-onnxruntime", "gan-sample", ["{traversal.onnx}", "--backend", "onnxruntime", "-o", "s.png"], 2,
     "escapes"),
    ("sample-huge-dims-native", "gan-sample", ["{huge_dims.onnx}", "--backend", "native", "-o", "s.png"], 2,
     "absurd size"),
    ("sample-huge-dims-onnxruntime", "gan-sample", ["{huge_dims.onnx}", "--backend", "onnxruntime", "-o", "s.png"], 2,
     "onnxruntime cannot load it"),
    ("sample-lying-size-native", "gan-sample", ["{lying_size.onnx}", "--backend", "native", "-o", "s.png"], 2,
     "the native kernel cannot run it"),
    ("sample-lying-size-onnxruntime", "gan-sample", ["{lying_size.onnx}", "--backend", "onnxruntime", "-o", "s.png"],
     2, "onnxruntime cannot load it"),
    ("sample-negative-n", "gan-sample", ["{model.onnx}", "-n", "-1", "-o", "s.png"], 2, "-n"),
    ("sample-absurd-n", "gan-sample", ["{model.onnx}", "-n", ABSURD, "-o", "s.npz"], 2, "ask for fewer"),
    ("sample-label-out-of-range", "gan-sample", ["{conditional.onnx}", "--label", "3", "-o", "s.png"], 2,
     "no such class"),
    ("sample-label-unconditional", "gan-sample", ["{model.onnx}", "--label", "1", "-o", "s.png"], 2, "unconditional"),
    ("sample-out-kind", "gan-sample", ["{model.onnx}", "-o", "s.jpg"], 2, "cannot write '.jpg'"),
    ("sample-out-full-folder", "gan-sample", ["{model.onnx}", "-o", "a_full_folder"], 2, "not an empty folder"),
    ("sample-out-unwritable", "gan-sample", ["{model.onnx}", "-o", "a_file/s.png"], 2, "cannot write"),

    ("eval-missing", "gan-eval", ["{missing}.onnx"], 2, "no such file"),
    ("eval-garbage", "gan-eval", ["{garbage.onnx}", "-o", "m.json"], 2, "not an ONNX model ("),
    ("eval-a-checkpoint", "gan-eval", ["{mlp.pt}", "-o", "m.json"], 2, "not an ONNX model ("),
    ("eval-traversal", "gan-eval", ["{traversal.onnx}", "--backend", "onnxruntime", "-o", "m.json"], 2, "escapes"),
    # auto: the native reader refuses the bomb, so onnxruntime is asked, and refuses it too
    ("eval-huge-dims", "gan-eval", ["{huge_dims.onnx}", "-o", "m.json"], 2, "onnxruntime cannot load it"),
    ("eval-too-few", "gan-eval", ["{model.onnx}", "-n", "5", "-o", "m.json"], 2, "-n"),
    ("eval-absurd-n", "gan-eval", ["{model.onnx}", "-n", ABSURD, "-o", "m.json"], 2, "ask for fewer"),
    ("eval-out-is-a-folder", "gan-eval", ["{model.onnx}", "-n", "10", "-o", "a_folder"], 2, "is a folder"),
    ("eval-out-unwritable", "gan-eval", ["{model.onnx}", "-n", "10", "-o", "a_file/m.json"], 2, "cannot write"),

    # issue 13: a run folder belongs to one run
    ("train-into-a-full-folder", "gan-train", ["--data", "{data.npy}", *TRAIN, "--out", "a_full_folder"], 2,
     "holds files"),
    ("train-resume-into-another-folder", "gan-train", ["--resume", "my_run", "--steps", "5", "--out", "a_full_folder"],
     2, "holds files"),
    # outputs never overwrite inputs
    ("export-onto-its-checkpoint", "gan-export", ["my_run", "-o", "my_run/checkpoints/last.pt"], 2, "is the input"),
    ("eval-onto-its-model", "gan-eval", ["mine.onnx", "-n", "10", "-o", "./mine.onnx"], 2, "is the input"),
    # every declared size bounded
    ("train-npz-declares-730-GiB", "gan-train", ["--data", "{bomb.npz}", *TRAIN, "--out", "run"], 2,
     "declares 730.0 GiB"),
    ("train-png-declares-30000x30000", "gan-train", ["--data", "{bomb_pngs}", *TRAIN, "--out", "run"], 2, "x.png"),
    ("train-label-2-to-the-40", "gan-train", ["--data", "{huge_label.npz}", "--cond", *TRAIN, "--out", "run"], 2,
     "more than 4096"),
    # odd files
    ("train-data-a-named-pipe", "gan-train", ["--data", "{pipe.npy}", *TRAIN, "--out", "run"], 2, "not a regular file"),
    ("export-a-named-pipe", "gan-export", ["{pipe.pt}", "-o", "m.onnx"], 2, "not a regular file"),
    ("train-resume-a-named-pipe", "gan-train", ["--resume", "{pipe.pt}", "--steps", "5", "--out", "run"], 2,
     "not a regular file"),
    ("sample-a-named-pipe", "gan-sample", ["{pipe.onnx}", "-o", "s.png"], 2, "not a regular file"),
    ("eval-a-named-pipe", "gan-eval", ["{pipe.onnx}", "-o", "m.json"], 2, "not a regular file"),
    # garbage is never a success: NaN weights (exit 1, a failed self-check)
    ("sample-nan-native", "gan-sample", ["{nan.onnx}", "--backend", "native", "-o", "s.png"], 1, "NaN/Inf"),
    ("sample-nan-onnxruntime", "gan-sample", ["{nan.onnx}", "--backend", "onnxruntime", "-o", "pngs/"], 1, "NaN/Inf"),
    ("eval-nan", "gan-eval", ["{nan.onnx}", "-n", "10", "-o", "m.json"], 1, "NaN/Inf"),
]


def build_inputs(folder: Path) -> None:
    """Every input file of the matrix, made here from tiny checkpoints and their exports."""
    from onnxgan.export.onnx_export import export_checkpoint

    rng = np.random.default_rng(0)
    np.save(folder / "data.npy", rng.integers(0, 256, (64, 8, 8), dtype=np.uint8))  # (N, H, W)
    np.savez(folder / "bad_labels.npz", images=rng.integers(0, 256, (64, 8, 8), dtype=np.uint8),
             labels=np.arange(64) % 3 - 1)  # -1 is not a class
    np.savez(folder / "huge_label.npz", images=rng.integers(0, 256, (64, 8, 8), dtype=np.uint8),
             labels=np.full(64, 2**40))  # one class of 2**40: a trillion class names, once
    _write_bombs(folder)
    for name in ("pipe.npy", "pipe.pt", "pipe.onnx"):
        os.mkfifo(folder / name)  # reading one blocks until a writer comes: forever
    mlp = write_checkpoint(folder / "mlp.pt", tiny_config("mlp"))
    bn = write_checkpoint(folder / "bn.pt", tiny_config("mlp-bn"))
    cond = write_checkpoint(folder / "cond.pt", tiny_config("mlp", num_classes=3, class_names=("a", "b", "c")))
    (folder / "model.onnx").write_bytes(export_checkpoint(mlp).data)
    (folder / "conditional.onnx").write_bytes(export_checkpoint(cond).data)
    # another model's weights under this model's config: mlp-bn's record, mlp's state dicts
    (folder / "other_model.pt").write_bytes(_swap_config(mlp, bn, folder / "data.npy"))
    (folder / "resumable.pt").write_bytes(_swap_config(mlp, mlp, folder / "data.npy"))
    for kind, good in (("npy", folder / "data.npy"), ("pt", mlp), ("onnx", folder / "model.onnx")):
        data = good.read_bytes()
        (folder / f"empty.{kind}").write_bytes(b"")
        (folder / f"truncated.{kind}").write_bytes(data[: len(data) // 2])
        (folder / f"garbage.{kind}").write_bytes(rng.bytes(len(data)))

    model = onnx.load(folder / "model.onnx")
    foreign = onnx.ModelProto()
    foreign.CopyFrom(model)
    del foreign.metadata_props[:]
    (folder / "foreign.onnx").write_bytes(foreign.SerializeToString())
    # external data outside the model's folder (path traversal), instead of the first weight's bytes
    traversal = _with_first_initializer(model, lambda t: (t.ClearField("raw_data"),
                                                          setattr(t, "data_location", TensorProto.EXTERNAL),
                                                          t.external_data.add(key="location", value="../../etc/passwd")))
    (folder / "traversal.onnx").write_bytes(traversal.SerializeToString())
    # a memory bomb: the first weight declares 2**31 x 2**31 floats (16 EiB) and holds none
    huge = _with_first_initializer(model, lambda t: (t.ClearField("raw_data"), t.ClearField("dims"),
                                                     t.dims.extend([2**31, 2**31])))
    (folder / "huge_dims.onnx").write_bytes(huge.SerializeToString())
    # the first weight's dims say 16 x 8 floats, its raw_data holds one
    lying = _with_first_initializer(model, lambda t: setattr(t, "raw_data", t.raw_data[:4]))
    (folder / "lying_size.onnx").write_bytes(lying.SerializeToString())
    # a model exported from a diverged run: the first weight all NaN
    nan = _with_first_initializer(model, lambda t: setattr(t, "raw_data", np.full(len(t.raw_data) // 4, np.nan,
                                                                                  np.float32).tobytes()))
    (folder / "nan.onnx").write_bytes(nan.SerializeToString())


def _write_bombs(folder: Path) -> None:
    """bomb.npz: 1 KB declaring a 730 GiB array; bomb_pngs/x.png: a 1x1 PNG whose header says 30000x30000."""
    import numpy.lib.format as npy
    from PIL import Image

    header = _bytes_of(lambda f: npy.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                                "shape": (730 * 2**30,)}))
    with zipfile.ZipFile(folder / "bomb.npz", "w") as archive:
        archive.writestr("images.npy", header + bytes(1000))
    png = bytearray(_bytes_of(lambda f: Image.new("L", (1, 1)).save(f, format="PNG")))
    png[16:24] = struct.pack(">II", 30000, 30000)  # IHDR's width and height, then its CRC
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (folder / "bomb_pngs").mkdir()
    (folder / "bomb_pngs" / "x.png").write_bytes(bytes(png))


def _bytes_of(write) -> bytes:
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _swap_config(weights: Path, config: Path, data: Path) -> bytes:
    import torch

    state = torch.load(weights, weights_only=True)
    state["model_config"] = torch.load(config, weights_only=True)["model_config"]
    state["train_config"]["data"] = str(data)  # resumable: the data's images fit the model
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _with_first_initializer(model: onnx.ModelProto, change) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    change(copy.graph.initializer[0])
    return copy


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, dict, dict]]:
    """Run every row (4 processes at a time): id -> (result, files before, files after) of its folder."""
    inputs = tmp_path_factory.mktemp("inputs")
    build_inputs(inputs)
    files = {p.name: str(p) for p in inputs.iterdir()} | {"missing": str(inputs / "missing")}

    def run(row):
        name, command, args, _, _ = row
        cwd = tmp_path_factory.mktemp(name)
        (cwd / "a_file").write_text("not a folder")
        (cwd / "a_folder").mkdir()
        (cwd / "a_full_folder").mkdir()
        (cwd / "a_full_folder" / "keep.txt").write_text("keep")
        (cwd / "my_run" / "checkpoints").mkdir(parents=True)
        shutil.copy(files["resumable.pt"], cwd / "my_run" / "checkpoints" / "last.pt")
        shutil.copy(files["model.onnx"], cwd / "mine.onnx")
        before = snapshot(cwd)
        argv = [str(BIN / command), *(re.sub(r"\{([^}]+)\}", lambda m: files[m[1]], arg) for arg in args)]
        try:
            result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
        except subprocess.TimeoutExpired:  # a hang is this row's failure, not the whole matrix's
            result = subprocess.CompletedProcess(argv, None, "", f"hung for {TIMEOUT_S} s")
        return name, (result, before, snapshot(cwd))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, ROWS))


@pytest.mark.parametrize("name, command, args, code, words", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_is_one_line_a_documented_code_and_no_output(results, name, command, args, code, words):
    result, before, after = results[name]
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith(f"{command}: error: ") and words in lines[0], lines[0]
    assert after == before, f"files left behind or changed: {sorted(set(after.items()) ^ set(before.items()))}"
