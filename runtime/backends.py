"""The engines behind ``Sampler``: onnxruntime (CPU or CUDA) and the native C++ kernel.

Each backend loads a model.onnx from bytes whose contract the Sampler has checked, and offers
``run(z, labels) -> image`` on inputs the Sampler has already checked. Asking for a backend or a device
that cannot load fails with a ``UserError``. ``auto`` decides from the graph: the native kernel when
its reader accepts the file and the model runs on the CPU, onnxruntime otherwise; ``Sampler.info()``
says which and why. onnxruntime is optional (the base install has none: onnxgan.extras); it is imported
only when a backend needs it, and its absence is a one-line error naming the extra to install.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys

import numpy as np

from onnxgan.errors import UserError, first_line
from onnxgan.extras import onnxruntime

from . import _native
from .contract import INPUT_LABEL, INPUT_Z, OUTPUT_IMAGE

BACKENDS = ("auto", "onnxruntime", "native")
DEVICES = ("auto", "cpu", "cuda")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
_QUIET, _DEFAULT_SEVERITY = 3, 2  # onnxruntime log severities: errors only; warnings and up


class NativeRefused(UserError):
    """The native kernel's reader refused a model (a conv generator, say); ``reason`` is its words. Each
    command says what to use instead (gan-web has no onnxruntime to offer)."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: the native kernel cannot run it ({reason}); sample it with onnxruntime "
                         "(gan-sample --backend onnxruntime, Sampler(..., backend=\"onnxruntime\"))")
        self.reason = reason


def open_backend(name: str, data: bytes, device: str, threads: int | None, source: str):
    """(a loaded ``OnnxRuntimeBackend`` or ``NativeBackend`` for ``name`` in BACKENDS, why it is that one)."""
    if name == "onnxruntime":
        return OnnxRuntimeBackend(data, device, threads, source), "asked for"
    if name == "native":
        if device == "cuda":
            raise UserError("the native backend runs on the CPU only; use --device cpu or --backend onnxruntime")
        try:
            return NativeBackend(_native.Model.from_bytes(data, threads or 0)), "asked for"
        except ValueError as e:
            raise NativeRefused(source, str(e)) from None
    if device == "cuda" or (device == "auto" and cuda_device_present()):
        return (OnnxRuntimeBackend(data, device, threads, source, "sampling on a CUDA GPU (--device cuda)"),
                "auto: the model runs on a CUDA GPU, and the native kernel runs on the CPU only")
    try:
        model = _native.Model.from_bytes(data, threads or 0)
    except ValueError as e:
        why = f"{source}: the native kernel cannot run it ({e}), so this model"
        return OnnxRuntimeBackend(data, device, threads, source, why), f"auto: the native reader does not take it ({e})"
    return NativeBackend(model), "auto: the native reader takes it and the model runs on the CPU"


@functools.cache
def cuda_device_present() -> bool:
    """A quiet probe: onnxruntime is installed, has a CUDA provider and the CUDA driver reports a device.

    onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU, and asking for it
    there prints errors before it falls back to the CPU; the driver API answers without a sound.
    Without onnxruntime the answer is no (the base install samples on with the native kernel).
    """
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    if _CUDA not in onnxruntime("sampling on a CUDA GPU").get_available_providers():
        return False
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        driver = ctypes.CDLL(name)
    except OSError:
        return False
    count = ctypes.c_int(0)
    return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0


class OnnxRuntimeBackend:
    """One onnxruntime session; ``session.run`` is thread-safe, so one backend serves many threads.

    purpose: who needs onnxruntime, for the one-line error when it is not installed.
    """

    name = "onnxruntime"

    def __init__(self, data: bytes, device: str, threads: int | None, source: str,
                 purpose: str = "the onnxruntime backend"):
        ort = onnxruntime(purpose)
        state = ort.capi.onnxruntime_pybind11_state  # the exceptions a session raises on a file it cannot use
        load_errors = (state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf,
                       state.NotImplemented, state.RuntimeException)
        want_cuda = device == "cuda" or (device == "auto" and cuda_device_present())
        if device == "cuda" and not cuda_device_present():
            raise UserError("--device cuda: onnxruntime finds no usable CUDA GPU here (needs onnxruntime-gpu, "
                            "an NVIDIA driver and a GPU); use --device cpu or auto")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = [_CUDA, _CPU] if want_cuda else [_CPU]
        if want_cuda:  # a CUDA provider that fails to load logs errors before it falls back; we report it
            options.log_severity_level = _QUIET
            ort.set_default_logger_severity(_QUIET)
        try:
            self.session = ort.InferenceSession(data, sess_options=options, providers=providers)
        except load_errors as e:
            raise UserError(f"{source}: onnxruntime cannot load it ({first_line(e)})") from None
        finally:
            if want_cuda:
                ort.set_default_logger_severity(_DEFAULT_SEVERITY)
        self.provider = self.session.get_providers()[0]
        self.precision = "float32"  # float16 weights are Cast to float32 when the session loads
        if device == "cuda" and self.provider != _CUDA:
            raise UserError("--device cuda: onnxruntime's CUDA provider failed to load (check the CUDA and "
                            "cuDNN libraries onnxruntime-gpu needs); use --device cpu or auto")
        self.threads = threads

    def run(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """z float32 (N, latent_dim), labels int64 (N,) or None -> image float32 (N, C, H, W)."""
        feeds = {INPUT_Z: z} if labels is None else {INPUT_Z: z, INPUT_LABEL: labels}
        if self.provider != _CUDA:
            return self.session.run([OUTPUT_IMAGE], feeds)[0]
        # On the GPU, bind the inputs once and let onnxruntime copy the image back: no extra host copies.
        # A binding belongs to one call, so concurrent callers never share one.
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(OUTPUT_IMAGE, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


class NativeBackend:
    """The C++ kernel (``onnxgan.runtime._native.Model``) on the CPU."""

    name = "native"
    provider = "native-cpu"

    def __init__(self, model: _native.Model):
        self.model = model
        self.threads = model.threads
        self.precision = model.precision  # the weights in memory: as the file stores them (precision "auto")

    def run(self, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        return self.model.generate(z, labels)
