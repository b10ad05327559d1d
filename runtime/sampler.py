"""``Sampler``: model.onnx -> images, with every input checked before it reaches a backend.

A Sampler holds no state that changes after it is built, so one instance may serve many threads at
once (both backends' ``run`` are thread-safe). ``sample(n, seed)`` draws z from the portable latent RNG
(runtime/latent.py), so one seed gives the same z on every backend and machine.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from onnxgan.errors import CheckFailed, UserError, printable
from onnxgan.images import to_uint8
from onnxgan.machine import physical_memory

from . import pretrained
from ._native import MAX_THREADS
from .backends import BACKENDS, DEVICES, open_backend
from .contract import ModelInfo, check_interface
from .latent import check_truncation, latent
from .onnx_meta import NotOnnx, read_header

Labels = int | str | Sequence[int | str] | np.ndarray | None


class Sampler:
    """A loaded generator. ``model`` is a path to a model.onnx or its bytes.

    backend: "auto" (the native kernel when its reader takes the file and the model runs on the CPU,
    else onnxruntime; info() says which and why), "onnxruntime" or "native" (the C++ kernel, CPU only).
    device: "auto" (CUDA when onnxruntime can use a GPU here, else CPU), "cpu" or "cuda".
    threads: intra-op threads (None: the backend's default).
    ``close()`` (or the end of a ``with Sampler(...) as s:`` block) frees the backend (the native model's
    memory and threads, or the onnxruntime session) at once; a closed Sampler refuses to sample.
    It keeps what it was built from: ``data`` (the model's bytes, read once), their ``sha256``, the
    requested ``device``, and ``model_info`` (the checked metadata).
    """

    def __init__(self, model: str | os.PathLike | bytes, backend: str = "auto", device: str = "auto",
                 threads: int | None = None):
        if backend not in BACKENDS:
            raise UserError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if device not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if threads is not None and not 1 <= threads <= MAX_THREADS:  # both backends: onnxruntime would start them all
            raise UserError(f"threads must be in 1..{MAX_THREADS} (or None for the default), got {threads}")
        self.source, data = _read(model)
        self.data = data  # what this Sampler was built from: worker processes build theirs from it
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.device = device  # as requested, so that a worker resolves "auto" as this Sampler did
        try:
            header = read_header(data)
        except NotOnnx as e:
            raise UserError(e.describe(self.source)) from None
        self.model_info = ModelInfo.from_metadata(header.metadata, self.source)
        check_interface(header, self.model_info, self.source)
        self._backend, self._backend_reason = open_backend(backend, data, device, threads, self.source)

    def __repr__(self) -> str:
        info = self.model_info
        classes = f", classes={info.num_classes}" if info.num_classes else ""
        state = "closed" if self._backend is None else f"backend={self._backend.name!r}"
        return (f"Sampler({self.source!r}, model={info.model!r}, latent_dim={info.latent_dim}, "
                f"image_shape={tuple(info.image_shape)}{classes}, {state})")

    def close(self) -> None:
        """Free the backend now rather than when the Sampler is garbage-collected; closing twice is fine."""
        self._backend = None

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _open_backend(self):
        if self._backend is None:
            raise UserError(f"{self.source}: this Sampler is closed; build a new one to sample")
        return self._backend

    @classmethod
    def pretrained(cls, name: str, backend: str = "auto", device: str = "auto",
                   threads: int | None = None) -> "Sampler":
        """A Sampler of a generator shipped in the package (runtime/pretrained: "mnist", a conditional MLP)."""
        return cls(pretrained.path(name), backend=backend, device=device, threads=threads)

    def latent(self, n: int, seed: int = 0, truncation: float | None = None, first: int = 0) -> np.ndarray:
        """The z behind ``sample(n, seed, truncation=..., first=...)``: float32 (n, latent_dim).

        truncation: None, or t >= 0.1: every |z| > t is redrawn (runtime/latent.py's portable rule).
        first: the rows [first, first + n) of ``latent(first + n, seed, truncation)``, without drawing the
        rows before (a shard of a big job).
        """
        if n < 0 or first < 0:
            raise UserError(f"the number of samples and the first row must be >= 0, got {n} and {first}")
        if not 0 <= seed < 2**64:
            raise UserError(f"seed must be in [0, 2**64), got {seed}")
        try:
            check_truncation(truncation)
        except ValueError as e:
            raise UserError(str(e)) from None
        check_fits_in_memory(n, self.model_info)
        return latent(n, self.model_info.latent_dim, seed, truncation, first)

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """z float32 (N, latent_dim) [+ labels int64 (N,)] -> images float32 (N, C, H, W) in value_range."""
        info = self.model_info
        if not isinstance(z, np.ndarray) or z.dtype != np.float32 or z.ndim != 2 or z.shape[1] != info.latent_dim:
            raise UserError(f"z must be a float32 array of shape (N, {info.latent_dim}), got "
                            f"{getattr(z, 'dtype', type(z).__name__)} {getattr(z, 'shape', '')}")
        n = z.shape[0]
        if n and not (np.isfinite(z.min()) and np.isfinite(z.max())):  # min/max propagate NaN, keep Inf
            raise UserError("z holds NaN or Inf; every z must be finite (a NaN z is a black image on one backend "
                            "and an error on another)")
        if info.num_classes == 0 and labels is not None:
            raise UserError("this model is unconditional: it takes no labels")
        if info.num_classes:
            if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != (n,):
                raise UserError(f"labels must be an int64 array of shape ({n},), got "
                                f"{getattr(labels, 'dtype', type(labels).__name__)} {getattr(labels, 'shape', '')}")
            if n and not (0 <= labels.min() and labels.max() < info.num_classes):
                raise UserError(f"labels must be in 0..{info.num_classes - 1}, got {labels.min()}..{labels.max()}")
            labels = np.ascontiguousarray(labels)
        if n == 0:
            return np.empty((0, *info.image_shape), dtype=np.float32)
        try:
            images = self._open_backend.run(np.ascontiguousarray(z), labels)  # float32 (N, C, H, W)
        except FloatingPointError:  # the native kernel's own check (ONNXGAN_ERROR_NONFINITE)
            images = None
        # min and max propagate NaN and keep Inf: two passes, no allocation, before any pixel is made
        if images is None or not (np.isfinite(images.min()) and np.isfinite(images.max())):
            raise CheckFailed(f"{self.source}: the model produced NaN/Inf values, so its images would be garbage; "
                              "its weights are probably broken (export it again from a good checkpoint)")
        return images

    def sample(self, n: int, seed: int = 0, labels: Labels = None, truncation: float | None = None,
               first: int = 0) -> np.ndarray:
        """n images as uint8 (n, H, W) for one channel or (n, H, W, C).

        labels (conditional models): one class for all, one per image, or None to cycle 0, 1, 2, ...;
        a class is its index or its name (``"7"``, or a name of ``info()["class_names"]``).
        truncation: see ``latent``.
        first: the images [first, first + n) of ``sample(first + n, seed, labels, truncation)`` (labels
        None or one class), without making the ones before: what a shard of a big job holds.
        """
        return self.pixels(self.latent(n, seed, truncation, first), self.labels(n, labels, first))

    def pixels(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """``generate(z, labels)`` mapped from the model's value_range to uint8 (N, H, W) or (N, H, W, C)."""
        return to_uint8(self.generate(z, labels), self.model_info.value_range)

    def interpolate(self, seed_a: int, seed_b: int, steps: int, label: int | str | None = None,
                    truncation: float | None = None) -> np.ndarray:
        """``steps`` uint8 images along the great circle (slerp) from z(seed_a) to z(seed_b) (each
        truncated as ``latent`` says). A conditional model walks within one class, ``label`` (default
        class 0): a walk whose class changed every frame would be a counter, not a walk.

        Slerp rather than lerp: a straight line between two Gaussian z passes through points of
        unusually small norm, which the generator never saw in training, and the middle images fade.
        """
        if steps < 2:
            raise UserError(f"an interpolation needs at least 2 steps, got {steps}")
        a, b = self.latent(1, seed_a, truncation)[0], self.latent(1, seed_b, truncation)[0]  # (latent_dim,) each
        z = slerp(a, b, np.linspace(0.0, 1.0, steps))  # (steps, latent_dim)
        one_class = 0 if label is None and self.model_info.num_classes else label
        return self.pixels(z, self.labels(steps, one_class))

    def labels(self, n: int, labels: Labels, first: int = 0) -> np.ndarray | None:
        """The int64 (n,) labels for a request (see ``sample``) of the images [first, first + n); None for
        unconditional models. The cycle numbers images by their global index: image i gets i % classes."""
        classes = self.model_info.num_classes
        if classes == 0:
            if labels is not None:
                raise UserError("this model is unconditional: it takes no labels")
            return None
        if labels is None:
            return np.arange(first, first + n, dtype=np.int64) % classes
        if isinstance(labels, str):
            labels = self.class_index(labels)
        elif isinstance(labels, Sequence) and any(isinstance(label, str) for label in labels):
            labels = [self.class_index(label) for label in labels]
        array = np.asarray(labels)
        if array.dtype.kind not in "iu" or array.ndim > 1:
            raise UserError(f"labels must be an integer or a list of integers, got {labels!r}")
        return np.broadcast_to(array, (n,)).astype(np.int64) if array.ndim == 0 else array.astype(np.int64)

    def class_index(self, label: int | str) -> int:
        """A class of a conditional model as its index: an index, its text ("7"), or a class name."""
        info = self.model_info
        if info.num_classes == 0:
            raise UserError(f"label {printable(str(label))}: this model is unconditional; it takes no labels")
        if isinstance(label, str) and label in info.class_names:
            return info.class_names.index(label)
        text = str(label)
        if not text.isdigit() or not int(text) < info.num_classes:
            names = f" or one of {', '.join(map(printable, info.class_names))}" if info.class_names else ""
            raise UserError(f"label {printable(text)}: the model has no such class; use 0..{info.num_classes - 1}{names}")
        return int(text)

    def info(self) -> dict[str, Any]:
        """What was loaded and how it runs: the model's metadata plus backend, provider and threads."""
        info, backend = self.model_info, self._open_backend
        return {
            "source": self.source, "model": info.model, "latent_dim": info.latent_dim,
            "image_shape": list(info.image_shape), "value_range": list(info.value_range),
            "num_classes": info.num_classes, "class_names": list(info.class_names),
            "training_step": info.training_step, "weights_dtype": info.weights_dtype,
            "latent_rng": info.latent_rng, "package_version": info.package_version,
            "backend": backend.name, "backend_reason": self._backend_reason,
            "provider": backend.provider, "threads": backend.threads,
            "precision": backend.precision,  # the weights in the backend's memory: float32 or float16
        }


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of vectors a, b (D,) at fractions t (T,) -> float32 (T, D).

    Nearly parallel vectors (angle under 1e-6 rad) fall back to the straight line, which equals the arc there.
    """
    a64, b64, t = a.astype(np.float64), b.astype(np.float64), t[:, None]  # t: (T, 1)
    cosine = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return ((1.0 - t) * a64 + t * b64).astype(np.float32)
    return ((np.sin((1.0 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)).astype(np.float32)


def check_fits_in_memory(n: int, info: ModelInfo) -> None:
    """Refuse, before allocating anything, a request whose arrays alone exceed this machine's memory
    (numpy would raise MemoryError part way, or the kernel would kill the process)."""
    per_image = 32 * info.latent_dim + 8 * int(np.prod(info.image_shape))  # z's words, normals, floats; image
    memory = physical_memory()
    if memory is None:  # the OS does not say: numpy's own MemoryError remains
        return
    if n * per_image > memory:
        raise UserError(f"{n} samples need about {n * per_image / 2**30:,.0f} GiB of memory, more than this "
                        f"machine's {memory / 2**30:,.0f} GiB; ask for fewer")


def _read(model: str | os.PathLike | bytes) -> tuple[str, bytes]:
    """(a name for messages, the file's bytes)."""
    if isinstance(model, (bytes, bytearray)):
        return "<model bytes>", bytes(model)
    path = Path(model)
    if not path.exists():
        raise UserError(f"{path}: no such file; give the path of a model.onnx written by gan-export")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the path of a model.onnx written by gan-export")
    if not path.is_file():  # a named pipe or a device: reading it could block forever or never end
        raise UserError(f"{path}: not a regular file; give the path of a model.onnx written by gan-export")
    try:
        return str(path), path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None
