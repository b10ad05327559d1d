"""Garbage is never a success (issue 13, class 5): a model whose output holds NaN/Inf fails with one line
and exit 1 on both backends, through gan-sample and gan-eval, and the C ABI returns
ONNXGAN_ERROR_NONFINITE; nothing is written."""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import onnx
import pytest

from kit import TINY_MODEL, assert_refused, invoke, snapshot
from onnxgan.errors import EXIT_CHECK_FAILED, CheckFailed
from onnxgan.runtime import Sampler
from onnxgan.runtime.cli import main as gan_sample
from onnxgan.runtime.eval_cli import main as gan_eval

LIBRARY = Path(__file__).parents[2] / "build" / "native" / "libonnxgan.so"
NONFINITE = 7  # onnxgan_status ONNXGAN_ERROR_NONFINITE


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory) -> Path:
    """The tiny generator with its first weight matrix all NaN (a model exported from a diverged run)."""
    model = onnx.load(TINY_MODEL)
    weight = model.graph.initializer[0]
    weight.raw_data = np.full(len(weight.raw_data) // 4, np.nan, np.float32).tobytes()
    path = tmp_path_factory.mktemp("nan") / "nan.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("backend", ["native", "onnxruntime"])
def test_sampler_refuses_nan_images(nan_model, backend):
    sampler = Sampler(nan_model, backend=backend, device="cpu")
    with pytest.raises(CheckFailed, match="the model produced NaN/Inf values") as caught:
        sampler.sample(4, seed=0)
    assert caught.value.exit_code == EXIT_CHECK_FAILED
    assert Sampler(TINY_MODEL, backend=backend, device="cpu").sample(4, seed=0).shape[0] == 4  # a good model


@pytest.mark.parametrize("main, command, args", [
    (gan_sample, "gan-sample", ["--backend", "native", "-o", "s.png"]),
    (gan_sample, "gan-sample", ["--backend", "onnxruntime", "-o", "s.npz"]),
    (gan_sample, "gan-sample", ["-n", "5", "-o", "pngs/"]),
    (gan_eval, "gan-eval", ["-n", "10", "-o", "m.json"]),
], ids=["sample-native", "sample-onnxruntime", "sample-folder", "eval"])
def test_commands_exit_1_and_write_nothing(nan_model, tmp_path, monkeypatch, main, command, args):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert_refused(invoke(main, [nan_model, *args]), command, EXIT_CHECK_FAILED, "NaN/Inf")
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(not LIBRARY.exists(), reason=f"no shared library at {LIBRARY} (cmake -S cpp -B build/native)")
def test_the_c_abi_returns_nonfinite(nan_model):
    lib = ctypes.CDLL(str(LIBRARY))
    p = ctypes.c_void_p
    lib.onnxgan_open_file.argtypes = [ctypes.c_char_p, p, ctypes.POINTER(p)]
    lib.onnxgan_sample.argtypes = [p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double, p, ctypes.c_int, p,
                                   ctypes.c_size_t]
    lib.onnxgan_close.argtypes = [p]
    lib.onnxgan_last_error.restype = ctypes.c_char_p
    model = p()
    assert lib.onnxgan_open_file(str(nan_model).encode(), None, ctypes.byref(model)) == 0, lib.onnxgan_last_error()
    try:
        out = np.zeros(4 * 4096, np.uint8)  # more than 4 images of any tiny model
        status = lib.onnxgan_sample(model, 4, 0, 0.0, None, 1, out.ctypes.data, out.nbytes)
        assert status == NONFINITE, lib.onnxgan_last_error()
        assert b"NaN/Inf" in lib.onnxgan_last_error()
    finally:
        lib.onnxgan_close(model)
