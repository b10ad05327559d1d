"""Image data sets read without torch: IDX files, .npy/.npz arrays and folders of images.

Training reads them (onnxgan.train.data adds the bundled MNIST) and so does gan-eval --real, which must
not import torch: hence here, in the shared ground. Every loader returns an ``ImageData`` whose images are uint8 (N, C, H, W); training maps them to
[-1, 1] on the device. Any fault in the user's data is one ``DataError`` naming the file and the fault.
Declared sizes are never trusted: every declared size (IDX and npy headers, each npz member, image
dimensions, label values) is checked against a limit, this machine's memory and the bytes really
present before anything is allocated or inflated.
"""
from __future__ import annotations

import gzip
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError, first_line
from .machine import physical_memory

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_DECLARED_BYTES = 16 * 2**30  # a header asking for more than this is hostile or broken
MAX_CLASSES = 4096  # more distinct labels than this is not a class-conditional data set
READ_CHUNK = 1 << 20  # bytes per read of an IDX file's data: the temporary buffer a read may take
MAX_IMAGE_SIDE = 1024  # ModelConfig's largest side; a larger picture is refused before it is decoded
AUTO_MAX_SIDE = 64  # a folder of mixed sizes without --image-size is fitted to its smallest side, at most this
# Pillow's image modes by what they hold: 8-bit grey, 16-bit grey, colour (palette and alpha included)
GREY_MODES = {"1", "L", "LA", "La"}
GREY16_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}  # "I": how some Pillows load 16-bit PNGs
COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr"}
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


def load_path(spec: str, image_size: int = 0, channels: int = 0) -> ImageData:
    """A path to IDX files, an array file or a folder of images. For a folder, ``image_size`` N > 0 brings
    every image to N x N (``fit``) and ``channels`` 1 or 3 makes them all grey or all RGB (0: as found)."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(path, "no such file or folder (use --data mnist or a path to your images)")
    if not (path.is_file() or path.is_dir()):  # a named pipe or a device would block or never end
        raise DataError(path, "not a regular file or a folder")
    if (image_size or channels) and (path.is_file() or _idx_image_files(path)):
        raise DataError(path, "--image-size and --channels apply to folders of images; give arrays and IDX files "
                              "at the size and channels to train on")
    if path.is_file():
        if path.suffix in (".npy", ".npz"):
            return _load_array_file(path)
        if "idx" in path.name or path.name.endswith(("-ubyte", "-ubyte.gz")):
            return load_idx_pair(path)
        raise DataError(path, "unknown data file kind; expected .npy, .npz, an IDX file or a folder")
    if _idx_image_files(path):
        return load_idx_pair(_pick_idx_images(path))
    return _load_image_folder(path, image_size, channels)


def memory_limit() -> int:
    """The most bytes one data set may declare: MAX_DECLARED_BYTES, or half of this machine's memory
    when that is less (the images are held twice while they are converted)."""
    memory = physical_memory()
    if memory is None:  # the OS does not say: the fixed limit alone
        return MAX_DECLARED_BYTES
    return min(MAX_DECLARED_BYTES, memory // 2)


def _check_declared(path: Path, declared: int, present: int | None = None) -> None:
    """A header's ``declared`` byte count against the limit and against the bytes ``present`` after it."""
    limit = memory_limit()
    if declared > limit:
        raise DataError(path, f"declares {declared / 2**30:,.1f} GiB of data, more than this machine can train on "
                              f"(limit {limit / 2**30:,.1f} GiB)")
    if present is not None and declared > present:
        raise DataError(path, f"truncated: its header declares {declared} data bytes, the file holds {present}")


def _check_class_count(path: Path, count: int) -> None:
    if count > MAX_CLASSES:
        raise DataError(path, f"labels declare {count} classes; more than {MAX_CLASSES} is not a class-labelled "
                              "data set (labels must count 0, 1, 2, ...)")


def _check_class_names(path: Path, names: tuple[str, ...]) -> None:
    """Class names travel into checkpoints and model.onnx and are printed: printable text only."""
    for name in names:
        if not name or any(unicodedata.category(c)[0] in "CZ" and c != " " for c in name):
            raise DataError(path, f"class name {name!r} is empty or holds control or separator characters; "
                                  "rename it")


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
            expected = int(np.prod(dims, dtype=object))  # Python ints: 4 dims of 2**32 overflow int64
            # A gzip file's inflated size is known only by inflating it, so the limit comes first; a raw
            # file must also hold the bytes it declares.
            raw = opener is open
            _check_declared(path, expected, path.stat().st_size - 4 - 4 * ndim if raw else None)
            # Read into the one array the data will live in. memory_limit allows two copies in all (this
            # one and a conversion after it); f.read() and then a writable copy were two here already.
            # In chunks: GzipFile.readinto reads a whole request into a temporary bytes object first.
            body, found = np.empty(expected, dtype=np.uint8), 0  # writable, for torch.from_numpy
            view = memoryview(body)
            while found < expected:
                more = f.readinto(view[found : found + READ_CHUNK])
                if not more:
                    break
                found += more
            trailing = f.read(1)  # one byte more tells trailing garbage apart
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise DataError(path, "no such file") from None
        raise DataError(path, f"cannot read ({e})") from None
    if found < expected:
        raise DataError(path, f"truncated IDX file: header declares {expected} data bytes, found {found}")
    if trailing:
        raise DataError(path, "IDX file has bytes after the declared data")
    return body.reshape(dims)


def _idx_image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and "idx3-ubyte" in p.name)


def _pick_idx_images(folder: Path) -> Path:
    candidates = _idx_image_files(folder)
    train = [p for p in candidates if "train" in p.name]
    if len(train) == 1 or len(candidates) == 1:
        return (train or candidates)[0]
    raise DataError(folder, f"several IDX image files ({', '.join(p.name for p in candidates)}); "
                            "pass the one to train on")


def load_idx_pair(images_path: Path, labels_path: Path | None = None) -> ImageData:
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
        labels = raw_labels.astype(np.int64)  # unsigned bytes: at most 256 classes
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1)) if len(labels) else ()
    return _checked(images[:, None], labels, class_names or (), str(images_path), images_path)


# ---- arrays ---------------------------------------------------------------------------------------

def _load_array_file(path: Path) -> ImageData:
    """.npy: images only; .npz: images under 'images'/'x' (or a lone array), labels under 'labels'/'y'."""
    _check_array_headers(path)
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
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError) as e:
        raise DataError(path, f"not a readable numpy file ({first_line(e)})") from None
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
        _check_class_count(path, count)
        if names is not None and (names.ndim != 1 or names.dtype.kind not in "US" or len(names) > MAX_CLASSES):
            raise DataError(path, f"class_names must be a list of at most {MAX_CLASSES} strings, found "
                                  f"{names.dtype} {names.shape}")
        class_names = tuple(str(n) for n in names) if names is not None else tuple(str(i) for i in range(count))
        if len(class_names) < count:
            raise DataError(path, f"{len(class_names)} class names for labels up to {count - 1}")
        _check_class_names(path, class_names)
    return _checked(np.ascontiguousarray(images), labels, class_names, str(path), path)


def _check_array_headers(path: Path) -> None:
    """Read the header of the .npy (or of each .npz member) and bound its declared size before numpy
    allocates it: a 1 KB file may declare terabytes, and an .npz member may inflate to more than it holds."""
    from numpy.lib import format as npy

    def declared(f, what: Path) -> tuple[int, int]:
        """(bytes the header declares, header length) of the npy stream ``f``."""
        try:
            version = npy.read_magic(f)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read_header(f)
        except (ValueError, EOFError, OSError, SyntaxError, TypeError) as e:
            raise DataError(what, f"not a readable numpy file ({first_line(e)})") from None
        return int(np.prod(shape, dtype=object)) * dtype.itemsize, f.tell()

    try:
        if path.suffix == ".npy":
            with open(path, "rb") as f:
                size, header = declared(f, path)
            _check_declared(path, size, path.stat().st_size - header)
            return
        total = 0
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    size, header = declared(f, path)
                _check_declared(Path(f"{path}:{member.filename}"), size, member.file_size - header)
                total += size
        _check_declared(path, total)
    except (OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as e:
        raise DataError(path, f"not a readable numpy file ({first_line(e)})") from None


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

def fit(picture, side: int):
    """A Pillow image -> side x side: its shorter side scaled to ``side`` (bicubic, which also smooths
    when it shrinks), then the centre cropped out of the longer one."""
    from PIL import Image

    width, height = picture.size
    scale = side / min(width, height)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    if size != picture.size:
        picture = picture.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    return picture.crop((left, top, left + side, top + side))


def _load_image_folder(folder: Path, image_size: int = 0, channels: int = 0) -> ImageData:
    """Images directly in ``folder`` (unlabelled) or in one subfolder per class (labelled); see load_path
    for ``image_size`` and ``channels``. As found, any colour image makes the whole set RGB, and images of
    mixed sizes are each fitted to the smallest side (a multiple of 4, at most AUTO_MAX_SIDE)."""
    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    loose = images_in(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and images_in(d))
    if loose and class_dirs:
        raise DataError(folder, "has images both at the top and in subfolders; use one layout")
    files = [(p, 0) for p in loose] or [(p, i) for i, d in enumerate(class_dirs) for p in images_in(d)]
    if not files:
        raise DataError(folder, "no images found (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    if class_dirs:
        _check_class_count(folder, len(class_dirs))
        _check_class_names(folder, tuple(d.name for d in class_dirs))
    pictures, held = [], 0
    for path, _ in files:
        picture = fit(_read_image(path), image_size) if image_size else _read_image(path)
        held += picture.size[0] * picture.size[1] * 3  # at most 3 bytes a pixel
        _check_declared(folder, held * len(files) // (len(pictures) + 1))  # this far, extrapolated to all
        pictures.append(picture)
    sizes = {picture.size for picture in pictures}
    source = str(folder)
    if len(sizes) > 1:  # mixed sizes and no --image-size: the smallest side, a multiple of 4 (conv Gs), <= 64
        side = min(AUTO_MAX_SIDE, min(min(size) for size in sizes) // 4 * 4)
        if side < 4:
            raise DataError(folder, f"images of mixed sizes down to {min(min(size) for size in sizes)} pixels; "
                                    "pass --image-size N (4 or more) to bring them to one size")
        pictures = [fit(picture, side) for picture in pictures]
        source = f"{folder} (mixed sizes, each fitted to {side}x{side}; --image-size N picks another)"
    colour = channels == 3 or (channels == 0 and any(im.mode == "RGB" for im in pictures))
    arrays = [np.asarray(im.convert("RGB" if colour else "L")) for im in pictures]
    images = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = np.array([label for _, label in files], dtype=np.int64) if class_dirs else None
    names = tuple(d.name for d in class_dirs)
    return _checked(np.ascontiguousarray(images), labels, names, source, folder)


def _read_image(path: Path):
    """One image file -> a Pillow image in mode "L" (grey) or "RGB", its size checked before it is decoded.

    16-bit grey keeps its top 8 bits (Pillow's own convert("L") clips it, turning images white); modes
    outside GREY_MODES, GREY16_MODES and COLOUR_MODES are refused by name.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is refused, not printed
            with Image.open(path) as im:
                width, height = im.size  # from the header: nothing decoded yet
                if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
                    raise DataError(path, f"image is {width}x{height}; sides of 1..{MAX_IMAGE_SIDE} pixels are "
                                          "supported")
                if im.mode not in GREY_MODES | GREY16_MODES | COLOUR_MODES:
                    raise DataError(path, f"image mode {im.mode!r} is not supported; use 8- or 16-bit grey, RGB, "
                                          "RGBA or palette images")
                im.load()
                if im.mode in GREY16_MODES:
                    return Image.fromarray(_grey16_to_uint8(path, np.asarray(im)))
                return im.convert("L" if im.mode in GREY_MODES else "RGB")
    except DataError:
        raise
    # A decoder fed hostile bytes raises almost anything (OSError, ValueError, SyntaxError, struct.error,
    # DecompressionBombError, ...); every one of them means "not a readable image", said in one line.
    except Exception as e:
        raise DataError(path, f"not a readable image ({type(e).__name__}: {first_line(e)})") from None


def _grey16_to_uint8(path: Path, pixels: np.ndarray) -> np.ndarray:
    """16-bit grey (H, W) in 0..65535 -> uint8 by rounding v / 257 (65535 -> 255, 257 -> 1)."""
    if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
        raise DataError(path, "a 32-bit integer image; use 8- or 16-bit grey")
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _checked(images: np.ndarray, labels: np.ndarray | None, class_names: tuple[str, ...], source: str,
             path: Path) -> ImageData:
    if len(images) == 0:
        raise DataError(path, "contains no images")
    return ImageData(images, labels, class_names, source)
