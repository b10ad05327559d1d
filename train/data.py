"""Image data for training: the bundled MNIST, IDX files, .npy/.npz arrays and folders of images.

Every loader returns an ``ImageData`` whose images are uint8 (N, C, H, W); training maps them to
[-1, 1] on the device. Any fault in the user's data is one ``DataError`` naming the file and the fault.
Declared sizes are never trusted: a header is checked against the bytes really present before any
large allocation.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onnxgan.errors import UserError

MNIST_DIR = Path(__file__).parent / "mnist"
MNIST_CLASSES = tuple(str(d) for d in range(10))
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_DECLARED_BYTES = 16 * 2**30  # an IDX header asking for more than this is hostile or broken
_IDX_IMAGES, _IDX_LABELS = 2051, 2049


class DataError(UserError):
    """The training data cannot be used; the message names the file and the fault."""

    def __init__(self, path: str | Path, fault: str):
        super().__init__(f"{path}: {fault}")


@dataclass(frozen=True)
class ImageData:
    images: np.ndarray  # uint8 (N, C, H, W)
    labels: np.ndarray | None  # int64 (N,), or None for unlabelled data
    class_names: tuple[str, ...]
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # (C, H, W)


def load_dataset(spec: str) -> ImageData:
    """``mnist`` (bundled, offline) or a path to IDX files, an array file or a folder of images."""
    if spec == "mnist":
        return load_mnist("train")
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(path, "no such file or folder (use --data mnist or a path to your images)")
    if path.is_file():
        if path.suffix in (".npy", ".npz"):
            return _load_array_file(path)
        if "idx" in path.name or path.name.endswith(("-ubyte", "-ubyte.gz")):
            return _load_idx_pair(path)
        raise DataError(path, "unknown data file kind; expected .npy, .npz, an IDX file or a folder")
    if _idx_image_files(path):
        return _load_idx_pair(_pick_idx_images(path))
    return _load_image_folder(path)


def load_mnist(split: str = "train") -> ImageData:
    """The bundled MNIST split ("train": 60,000, "t10k": 10,000), checked against SHA256SUMS."""
    images_path = MNIST_DIR / f"{split}-images-idx3-ubyte.gz"
    labels_path = MNIST_DIR / f"{split}-labels-idx1-ubyte.gz"
    _verify_sha256(images_path, labels_path)
    data = _load_idx_pair(images_path, labels_path)
    return ImageData(data.images, data.labels, MNIST_CLASSES, f"mnist ({split})")


def _verify_sha256(*paths: Path) -> None:
    expected = dict(line.split()[::-1] for line in (MNIST_DIR / "SHA256SUMS").read_text().splitlines() if line)
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected.get(path.name):
            raise DataError(path, "bundled MNIST file fails its SHA-256 check; reinstall onnxgan")


# ---- IDX ------------------------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """One IDX file (raw or gzip) of unsigned bytes -> uint8 array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) < 4:
                raise DataError(path, "truncated IDX file (no header)")
            zero, dtype_code, ndim = int.from_bytes(header[:2], "big"), header[2], header[3]
            if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
                raise DataError(path, f"wrong IDX magic 0x{header.hex()} (expected unsigned-byte data, "
                                      "e.g. 0x00000803 for images)")
            dims_bytes = f.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise DataError(path, "truncated IDX file (header cut short)")
            dims = tuple(int.from_bytes(dims_bytes[4 * i : 4 * i + 4], "big") for i in range(ndim))
            expected = int(np.prod(dims, dtype=np.int64))
            if expected > MAX_DECLARED_BYTES:
                raise DataError(path, f"IDX header declares {expected} bytes, more than any real data set")
            body = f.read(expected + 1)  # one byte more tells trailing garbage apart
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise DataError(path, "no such file") from None
        raise DataError(path, f"cannot read ({e})") from None
    if len(body) < expected:
        raise DataError(path, f"truncated IDX file: header declares {expected} data bytes, found {len(body)}")
    if len(body) > expected:
        raise DataError(path, "IDX file has bytes after the declared data")
    return np.frombuffer(bytearray(body), dtype=np.uint8).reshape(dims)  # writable, for torch.from_numpy


def _idx_image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and "idx3-ubyte" in p.name)


def _pick_idx_images(folder: Path) -> Path:
    candidates = _idx_image_files(folder)
    train = [p for p in candidates if "train" in p.name]
    if len(train) == 1 or len(candidates) == 1:
        return (train or candidates)[0]
    raise DataError(folder, f"several IDX image files ({', '.join(p.name for p in candidates)}); "
                            "pass the one to train on")


def _load_idx_pair(images_path: Path, labels_path: Path | None = None) -> ImageData:
    """IDX images (N, H, W) plus the matching labels file when it exists (images -> labels in the name)."""
    images = read_idx(images_path)
    if images.ndim != 3:
        raise DataError(images_path, f"IDX images must have 3 dimensions (N, H, W), found {images.ndim}")
    if labels_path is None:
        guess = images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))
        labels_path = guess if guess != images_path and guess.exists() else None
    labels = class_names = None
    if labels_path is not None:
        raw_labels = read_idx(labels_path)
        if raw_labels.ndim != 1:
            raise DataError(labels_path, "IDX labels must have 1 dimension")
        if len(raw_labels) != len(images):
            raise DataError(labels_path, f"{len(raw_labels)} labels for {len(images)} images in {images_path.name}")
        labels = raw_labels.astype(np.int64)
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1)) if len(labels) else ()
    return _checked(images[:, None], labels, class_names or (), str(images_path), images_path)


# ---- arrays ---------------------------------------------------------------------------------------

def _load_array_file(path: Path) -> ImageData:
    """.npy: images only; .npz: images under 'images'/'x' (or a lone array), labels under 'labels'/'y'."""
    try:
        if path.suffix == ".npy":
            images, labels, names = np.load(path, allow_pickle=False), None, None
        else:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                image_key = next((k for k in ("images", "x") if k in keys), keys[0] if len(keys) == 1 else None)
                if image_key is None:
                    raise DataError(path, f"no 'images' or 'x' array among {keys}")
                images = archive[image_key]
                label_key = next((k for k in ("labels", "y") if k in keys), None)
                labels = archive[label_key] if label_key else None
                names = archive["class_names"] if "class_names" in keys else None
    except (OSError, ValueError, EOFError) as e:
        raise DataError(path, f"not a readable numpy file ({e})") from None
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(path, f"images must be (N, H, W) or (N, H, W, C) with C 1 or 3, found {images.shape}")
    images = _to_uint8(path, images).transpose(0, 3, 1, 2)  # (N, C, H, W)
    class_names: tuple[str, ...] = ()
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(path, f"labels must be integers of shape ({len(images)},), found "
                                  f"{labels.dtype} {labels.shape}")
        labels = labels.astype(np.int64)
        if len(labels) and labels.min() < 0:
            raise DataError(path, "labels must be >= 0")
        count = int(labels.max()) + 1 if len(labels) else 0
        class_names = tuple(str(n) for n in names) if names is not None else tuple(str(i) for i in range(count))
        if len(class_names) < count:
            raise DataError(path, f"{len(class_names)} class names for labels up to {count - 1}")
    return _checked(np.ascontiguousarray(images), labels, class_names, str(path), path)


def _to_uint8(path: Path, images: np.ndarray) -> np.ndarray:
    """uint8 as is; floats in [0, 1] or [-1, 1] quantised to 0..255 (the device copy is uint8)."""
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise DataError(path, f"images must be uint8 or float, found {images.dtype}")
    if images.size == 0:
        return images.astype(np.uint8)
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(path, "images contain NaN or Inf")
    if low >= 0.0 and high <= 1.0:
        return np.rint(images * 255.0).astype(np.uint8)
    if low >= -1.0 and high <= 1.0:
        return np.rint((images + 1.0) * 127.5).astype(np.uint8)
    raise DataError(path, f"float images must lie in [0, 1] or [-1, 1], found [{low:g}, {high:g}]")


# ---- folders of images ----------------------------------------------------------------------------

def _load_image_folder(folder: Path) -> ImageData:
    """Images directly in ``folder`` (unlabelled) or in one subfolder per class (labelled)."""
    from PIL import Image, UnidentifiedImageError

    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    loose = images_in(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and images_in(d))
    if loose and class_dirs:
        raise DataError(folder, "has images both at the top and in subfolders; use one layout")
    files = [(p, 0) for p in loose] or [(p, i) for i, d in enumerate(class_dirs) for p in images_in(d)]
    if not files:
        raise DataError(folder, "no images found (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    pictures, shape = [], None
    for path, _ in files:
        try:
            with Image.open(path) as im:
                im.load()
                colour = im.mode not in ("1", "L", "LA", "I", "I;16", "F")
                pictures.append((path, im.convert("RGB" if colour else "L")))
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(path, f"not a readable image ({e})") from None
        size = pictures[-1][1].size
        if shape is None:
            shape = size
        elif size != shape:
            raise DataError(path, f"image is {size[0]}x{size[1]} but the first one is {shape[0]}x{shape[1]}; "
                                  "all images must have one size")
    any_colour = any(im.mode == "RGB" for _, im in pictures)
    arrays = [np.asarray(im.convert("RGB") if any_colour else im) for _, im in pictures]
    images = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = np.array([label for _, label in files], dtype=np.int64) if class_dirs else None
    names = tuple(d.name for d in class_dirs)
    return _checked(np.ascontiguousarray(images), labels, names, str(folder), folder)


def _checked(images: np.ndarray, labels: np.ndarray | None, class_names: tuple[str, ...], source: str,
             path: Path) -> ImageData:
    if len(images) == 0:
        raise DataError(path, "contains no images")
    return ImageData(images, labels, class_names, source)
