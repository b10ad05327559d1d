"""The installed shared library (libonnxgan.so, built by cmake -S cpp) through Python's ctypes, as an
embedder in any language with a C FFI would use it: version, every metadata entry, sampling and the
latent RNG with truncation equal to the Python package's, errors as status + message; and the Python
extension module, which links the static library, exports none of the C ABI.

The library comes from $ONNXGAN_LIBRARY or build/native/libonnxgan.so (.ci/run builds it first).
"""
from __future__ import annotations

import ctypes
import dataclasses
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kit import NATIVE_TINY, tiny_config, write_checkpoint
from onnxgan.export.onnx_export import export_checkpoint
from onnxgan.runtime import Sampler
from onnxgan.runtime.latent import latent
from onnxgan.runtime.onnx_meta import read_header

LIBRARY = Path(os.environ.get("ONNXGAN_LIBRARY", Path(__file__).parent.parent / "build" / "native" / "libonnxgan.so"))
OK, IO, ARGUMENT, NONFINITE = 0, 1, 4, 7  # onnxgan_status
UINT8 = 1  # onnxgan_output

# Skipped when there is no build, unless $ONNXGAN_LIBRARY names one (as in CI): then a missing file fails.
pytestmark = pytest.mark.skipif(not LIBRARY.exists() and "ONNXGAN_LIBRARY" not in os.environ,
                                reason=f"no shared library at {LIBRARY} (cmake -S cpp -B build/native && "
                                       "cmake --build build/native)")


class Info(ctypes.Structure):  # onnxgan_info
    _fields_ = [("latent_dim", ctypes.c_int64), ("channels", ctypes.c_int64), ("height", ctypes.c_int64),
                ("width", ctypes.c_int64), ("image_size", ctypes.c_int64), ("num_classes", ctypes.c_int64),
                ("value_min", ctypes.c_float), ("value_max", ctypes.c_float), ("threads", ctypes.c_int),
                ("precision", ctypes.c_int), ("kernel", ctypes.c_int), ("metadata_count", ctypes.c_int64)]


@pytest.fixture(scope="module")
def lib():
    lib = ctypes.CDLL(str(LIBRARY))
    p, i64, u64, size = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t
    strings = ctypes.POINTER(ctypes.c_char_p)
    for name, arguments in {
        "onnxgan_open_file": [ctypes.c_char_p, p, ctypes.POINTER(p)],
        "onnxgan_get_info": [p, ctypes.POINTER(Info)],
        "onnxgan_metadata_entry": [p, i64, strings, strings],
        "onnxgan_metadata": [p, ctypes.c_char_p, strings],
        "onnxgan_sample": [p, i64, u64, ctypes.c_double, p, ctypes.c_int, p, size],
        "onnxgan_latent": [i64, i64, u64, ctypes.c_double, p, size],
        "onnxgan_generate": [p, i64, p, p, p, size],
        "onnxgan_to_uint8": [p, i64, p, size, p, size],
    }.items():
        getattr(lib, name).argtypes = arguments
        getattr(lib, name).restype = ctypes.c_int
    lib.onnxgan_close.argtypes = [p]
    lib.onnxgan_close.restype = None
    lib.onnxgan_version.restype = lib.onnxgan_last_error.restype = ctypes.c_char_p
    return lib


@pytest.fixture
def model(lib):
    handle = ctypes.c_void_p()
    assert lib.onnxgan_open_file(str(NATIVE_TINY).encode(), None, ctypes.byref(handle)) == OK, lib.onnxgan_last_error()
    yield handle
    lib.onnxgan_close(handle)


def test_version_is_the_packages(lib):
    assert lib.onnxgan_version().decode() == importlib.metadata.version("onnxgan")


def test_info_and_every_metadata_entry(lib, model):
    info = Info()
    assert lib.onnxgan_get_info(model, ctypes.byref(info)) == OK
    assert (info.latent_dim, info.channels, info.height, info.width, info.num_classes) == (6, 1, 3, 4, 3)
    key, value = ctypes.c_char_p(), ctypes.c_char_p()
    entries = {}
    for index in range(info.metadata_count):
        assert lib.onnxgan_metadata_entry(model, index, ctypes.byref(key), ctypes.byref(value)) == OK
        entries[key.value.decode()] = value.value.decode()
    assert entries == read_header(NATIVE_TINY.read_bytes()).metadata
    assert lib.onnxgan_metadata(model, b"class_names", ctypes.byref(value)) == OK and value.value == b'["a", "b", "c"]'
    assert lib.onnxgan_metadata(model, b"nothing", ctypes.byref(value)) == OK and value.value is None
    assert lib.onnxgan_metadata_entry(model, info.metadata_count, ctypes.byref(key), ctypes.byref(value)) == ARGUMENT


@pytest.mark.parametrize("seed, truncation", [(0, 0.0), (2**64 - 1, 0.0), (5, 0.5), (99, 0.1)])
def test_sample_and_latent_equal_the_python_package(lib, model, seed, truncation):
    pixels = np.zeros((40, 3, 4), np.uint8)
    assert lib.onnxgan_sample(model, 40, seed, truncation, None, UINT8, pixels.ctypes.data, pixels.nbytes) == OK
    expected = Sampler(NATIVE_TINY, backend="native")
    np.testing.assert_array_equal(pixels, expected.sample(40, seed, truncation=truncation or None))
    z = np.zeros((9, 7), np.float32)
    assert lib.onnxgan_latent(9, 7, seed, truncation, z.ctypes.data, z.nbytes) == OK
    np.testing.assert_array_equal(z, latent(9, 7, seed, truncation or None))


def test_errors_are_a_status_and_a_message(lib, tmp_path):
    handle = ctypes.c_void_p()
    assert lib.onnxgan_open_file(str(tmp_path / "none.onnx").encode(), None, ctypes.byref(handle)) == IO
    assert b"none.onnx" in lib.onnxgan_last_error() and not handle.value
    z = np.zeros(4, np.float32)
    assert lib.onnxgan_latent(1, 4, 0, 0.05, z.ctypes.data, z.nbytes) == ARGUMENT
    assert lib.onnxgan_last_error() == b"truncation must be 0 (none) or >= 0.1, got 0.050000"


def test_the_python_extension_exports_no_c_abi():
    from onnxgan.runtime import _native

    module = ctypes.CDLL(_native.__file__)  # already loaded: dlopen returns it, dlsym sees its exports only
    for name in ("onnxgan_open_file", "onnxgan_sample", "onnxgan_version"):
        assert not hasattr(module, name), name
    assert hasattr(module, "PyInit__native")


@pytest.mark.parametrize("name", ["dcgan", "dcgan-upsample", "dcgan-fc"])
def test_conv_rgb_models_sample_the_python_packages_pixels(lib, tmp_path, name):
    """A conditional RGB conv generator, written by gan-export: uint8 (n, H, W, 3) equal to the native
    backend's, and onnxruntime's pixels by the pixel criterion."""
    config = dataclasses.replace(tiny_config(name, num_classes=3, class_names=("a", "b", "c")), image_shape=(3, 12, 12))
    path = tmp_path / "model.onnx"
    path.write_bytes(export_checkpoint(write_checkpoint(tmp_path / "g.pt", config, seed=2), "float32").data)
    handle = ctypes.c_void_p()
    assert lib.onnxgan_open_file(str(path).encode(), None, ctypes.byref(handle)) == OK, lib.onnxgan_last_error()
    try:
        info = Info()
        assert lib.onnxgan_get_info(handle, ctypes.byref(info)) == OK
        assert (info.channels, info.height, info.width, info.image_size, info.num_classes) == (3, 12, 12, 432, 3)
        pixels = np.zeros((37, 12, 12, 3), np.uint8)
        assert lib.onnxgan_sample(handle, 37, 7, 0.0, None, UINT8, pixels.ctypes.data, pixels.nbytes) == OK
    finally:
        lib.onnxgan_close(handle)
    np.testing.assert_array_equal(pixels, Sampler(path, backend="native").sample(37, 7))
    theirs = Sampler(path, backend="onnxruntime").sample(37, 7)
    differing = np.abs(pixels.astype(int) - theirs.astype(int))
    assert differing.max() <= 1 and (differing > 0).mean() <= 0.001


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_nonfinite_z_is_an_argument_error_not_black_images(lib, model, bad):
    z = latent(3, 6, 0)  # (3, latent_dim 6)
    z[1, 2] = bad
    labels = np.zeros(3, np.int64)
    out = np.zeros((3, 12), np.float32)
    assert lib.onnxgan_generate(model, 3, z.ctypes.data, labels.ctypes.data, out.ctypes.data, out.nbytes) == ARGUMENT
    assert lib.onnxgan_last_error() == b"z holds NaN or Inf (row 1); z must be finite"


def test_to_uint8_of_nonfinite_images_is_nonfinite(lib, model):
    images = np.zeros((2, 12), np.float32)  # (n, C*H*W) of the 1x3x4 model
    pixels = np.zeros((2, 12), np.uint8)
    assert lib.onnxgan_to_uint8(model, 2, images.ctypes.data, images.nbytes, pixels.ctypes.data, pixels.nbytes) == OK
    images[1, 5] = np.nan
    status = lib.onnxgan_to_uint8(model, 2, images.ctypes.data, images.nbytes, pixels.ctypes.data, pixels.nbytes)
    assert status == NONFINITE and b"image 1" in lib.onnxgan_last_error()


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    """The open of a FIFO blocks until a writer comes, forever here: refused before it is opened, in a child
    process so that a regression fails by its timeout instead of hanging the test run."""
    os.mkfifo(tmp_path / "pipe.onnx")
    code = (f"import ctypes; lib = ctypes.CDLL({str(LIBRARY)!r}); lib.onnxgan_last_error.restype = ctypes.c_char_p; "
            "handle = ctypes.c_void_p(); "
            f"print(lib.onnxgan_open_file({str(tmp_path / 'pipe.onnx').encode()!r}, None, ctypes.byref(handle))); "
            "print(lib.onnxgan_last_error().decode())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    status, message = result.stdout.splitlines()
    assert int(status) == IO and "is not a regular file" in message, result.stdout
