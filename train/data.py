"""Training data: the bundled MNIST (offline, checked against SHA256SUMS) or any path that
onnxgan.datasets reads (IDX files, .npy/.npz arrays, folders of images; torch-free, so that gan-eval
--real reads the same files). Every loader returns an ``ImageData`` of uint8 (N, C, H, W) images."""
from __future__ import annotations

import hashlib
from pathlib import Path

from onnxgan.datasets import DataError, ImageData, load_idx_pair, load_path

MNIST_DIR = Path(__file__).parent / "mnist"
MNIST_CLASSES = tuple(str(d) for d in range(10))


def load_dataset(spec: str, image_size: int = 0, channels: int = 0) -> ImageData:
    """``mnist`` (bundled, offline) or a path to IDX files, an array file or a folder of images (which
    ``image_size`` and ``channels`` may resize and convert: onnxgan.datasets.load_path)."""
    if spec != "mnist":
        return load_path(spec, image_size, channels)
    if image_size or channels:
        raise DataError("mnist", "--image-size and --channels apply to folders of images")
    return load_mnist("train")


def load_mnist(split: str = "train") -> ImageData:
    """The bundled MNIST split ("train": 60,000, "t10k": 10,000), checked against SHA256SUMS."""
    images_path = MNIST_DIR / f"{split}-images-idx3-ubyte.gz"
    labels_path = MNIST_DIR / f"{split}-labels-idx1-ubyte.gz"
    _verify_sha256(images_path, labels_path)
    data = load_idx_pair(images_path, labels_path)
    return ImageData(data.images, data.labels, MNIST_CLASSES, f"mnist ({split})")


def check_fits(data: ImageData, image_shape: tuple[int, ...], num_classes: int) -> None:
    """Refuse data that a model making ``image_shape`` images of ``num_classes`` classes cannot train on
    (resuming on data that changed since the checkpoint)."""
    if data.image_shape != tuple(image_shape):
        raise DataError(data.source, f"images are {data.image_shape}, the checkpoint's model makes "
                                     f"{tuple(image_shape)}")
    if num_classes and (data.labels is None or (len(data.labels) and int(data.labels.max()) >= num_classes)):
        found = "no labels" if data.labels is None else f"labels up to {int(data.labels.max())}"
        raise DataError(data.source, f"has {found}, the checkpoint's conditional model knows {num_classes} "
                                     "classes; resume on the data it was trained on")


def _verify_sha256(*paths: Path) -> None:
    expected = dict(line.split()[::-1] for line in (MNIST_DIR / "SHA256SUMS").read_text().splitlines() if line)
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected.get(path.name):
            raise DataError(path, "bundled MNIST file fails its SHA-256 check; reinstall onnxgan")
