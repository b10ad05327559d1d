"""Every declared size is bounded before anything is allocated, and every image mode is decoded or
refused by name (issue 13, classes 3 and 4). Direct calls of the loader: each row is milliseconds.

The same bombs through the real gan-train process are rows of tests/test_bad_inputs.py.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxgan import datasets as data_module
from onnxgan.datasets import MAX_CLASSES, READ_CHUNK, DataError, read_idx
from onnxgan.train.data import load_dataset


def npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """A version 1.0 .npy header declaring ``shape`` (the bytes after it are up to the caller)."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def write_npz(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def png_of_declared_size(path: Path, width: int, height: int) -> Path:
    """A 1x1 PNG whose IHDR is rewritten to declare width x height (CRC fixed): a decompression bomb's header."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    png = bytearray(buffer.getvalue())
    ihdr = 8 + 4  # signature, then the IHDR chunk's length; its type and data follow
    png[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    png[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(png[ihdr : ihdr + 17])))
    path.write_bytes(bytes(png))
    return path


def idx_header(shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def _corrupt_deflate(path: Path) -> Path:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=np.random.default_rng(1).integers(0, 256, (64, 8, 8), dtype=np.uint8))
    data = bytearray(buffer.getvalue())
    data[60:90] = bytes(30)  # inside the first member's deflate stream
    path.write_bytes(bytes(data))
    return path


# (id, builder(folder) -> path given to --data, words in the DataError)
BOMBS = [
    ("npy-declares-730-GiB", lambda d: _write(d / "bomb.npy", npy_header((730 * 2**30,)) + bytes(64)), "declares"),
    ("npz-member-declares-730-GiB", lambda d: write_npz(d / "bomb.npz", {"images.npy": npy_header((730 * 2**30,))}),
     "declares"),
    ("npz-member-declares-more-than-it-holds", lambda d: write_npz(
        d / "short.npz", {"images.npy": npy_header((64, 8, 8)) + bytes(100)}), "truncated"),
    ("npz-labels-declare-730-GiB", lambda d: write_npz(d / "bomb.npz", {
        "images.npy": npy_header((64, 8, 8)) + bytes(64 * 64), "labels.npy": npy_header((730 * 2**27,), "<i8")}),
     "declares"),
    ("npz-corrupt-deflate", lambda d: _corrupt_deflate(d / "x.npz"), "not a readable numpy file"),
    ("npz-not-a-zip", lambda d: _write(d / "x.npz", b"PK\x03\x04" + bytes(100)), "not a readable numpy file"),
    ("raw-idx-declares-more-than-it-holds", lambda d: _write(d / "train-images-idx3-ubyte", idx_header((60000, 28, 28))
                                                             + bytes(100)), "truncated"),
    ("idx-dims-overflow-int64", lambda d: _write(d / "train-images-idx3-ubyte", bytes([0, 0, 8, 4])
                                                 + b"\xff\xff\xff\xff" * 4), "declares"),
    ("png-header-5000x5000", lambda d: _folder_with(d, png_of_declared_size(d / "x.png", 5000, 5000)),
     "image is 5000x5000"),
    ("png-in-pillows-bomb-warning-zone", lambda d: _folder_with(d, png_of_declared_size(d / "x.png", 12000, 12000)),
     "x.png"),
    ("png-beyond-pillows-bomb-limit", lambda d: _folder_with(d, png_of_declared_size(d / "x.png", 2**20, 2**20)),
     "x.png"),
    ("label-2-to-the-40", lambda d: _npz_with_labels(d, np.full(64, 2**40)), f"more than {MAX_CLASSES}"),
    ("class-folders-beyond-the-limit", lambda d: _class_folders(d, MAX_CLASSES + 1), f"more than {MAX_CLASSES}"),
    ("class-name-with-a-newline", lambda d: _npz_with_labels(d, np.arange(64) % 2, names=["a", "b\nc"]),
     "class name"),
    ("class-name-with-a-terminal-escape", lambda d: _npz_with_labels(d, np.arange(64) % 2, names=["a", "\x1b[2J"]),
     "class name"),
    ("class-names-not-strings", lambda d: _npz_with_labels(d, np.arange(64) % 2, names=np.array([1.5, 2.5])),
     "class_names must be"),
    ("a-named-pipe", lambda d: _fifo(d / "pipe.npy"), "not a regular file"),
    ("image-mode-F", lambda d: _folder_with(d, _saved(Image.new("F", (4, 4)), d / "x.tif")), "image mode 'F'"),
    ("image-32-bit-values", lambda d: _folder_with(d, _saved(Image.fromarray(np.full((4, 4), 2**20, np.int32)),
                                                             d / "x.tif")), "32-bit"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _saved(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def _folder_with(folder: Path, image: Path) -> Path:
    """The folder the image was written in (gan-train --data takes folders of images)."""
    return image.parent


def _npz_with_labels(folder: Path, labels: np.ndarray, names=None) -> Path:
    arrays = {"images": np.zeros((len(labels), 8, 8), np.uint8), "labels": labels}
    if names is not None:
        arrays["class_names"] = np.asarray(names)
    np.savez(folder / "labelled.npz", **arrays)
    return folder / "labelled.npz"


def _class_folders(folder: Path, count: int) -> Path:
    image = io.BytesIO()
    Image.new("L", (2, 2)).save(image, format="PNG")
    for k in range(count):
        (folder / f"c{k}").mkdir()
        (folder / f"c{k}" / "0.png").write_bytes(image.getvalue())
    return folder


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("name, build, words", BOMBS, ids=[row[0] for row in BOMBS])
def test_a_hostile_size_or_decoder_input_is_one_data_error(tmp_path, name, build, words):
    with pytest.raises(DataError) as caught:
        load_dataset(str(build(tmp_path)))
    message = str(caught.value)
    assert words in message and "\n" not in message, message


def test_a_gzip_idx_that_inflates_beyond_memory_is_refused_before_inflating(tmp_path, monkeypatch):
    """The header declares 4 MiB; with 1 MiB of memory to spare the file is refused before gzip inflates any
    of it (a gzip file's inflated size is unknown until it is inflated)."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx_header((64, 256, 256)) + bytes(64 * 256 * 256))
    monkeypatch.setattr(data_module, "memory_limit", lambda: 2**20)
    inflated = []
    real_read = gzip.GzipFile.read
    monkeypatch.setattr(gzip.GzipFile, "read", lambda self, size=-1: inflated.append(size) or real_read(self, size))
    with pytest.raises(DataError, match="declares 0.0 GiB of data, more than this machine can train on"):
        load_dataset(str(path))
    assert all(size < 64 for size in inflated), inflated  # only the header was read


def grey16_png(path: Path, values: np.ndarray) -> Path:
    Image.fromarray(values.astype(np.uint16)).save(path)  # mode I;16: a 16-bit grey PNG
    return path


def test_sixteen_bit_grey_keeps_its_values(tmp_path):
    """Pillow's convert("L") clips 16-bit grey to 255 (all white); the loader maps v -> round(v / 257)."""
    values = np.array([[0, 257, 32896, 65535]] * 4)
    grey16_png(tmp_path / "a.png", values)
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode in data_module.GREY16_MODES  # the file really is 16-bit
    data = load_dataset(str(tmp_path))
    assert data.images.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(data.images[0, 0], [[0, 1, 128, 255]] * 4)


def test_every_supported_mode_decodes_to_the_same_picture(tmp_path):
    """The same 2x2 picture as 1-bit, 8-bit grey, 16-bit grey, grey+alpha, palette, RGB, RGBA: grey images
    read as grey, colour ones (and, in a mixed folder, grey ones too) as RGB with equal channels."""
    grey = np.array([[0, 255], [255, 0]], np.uint8)
    pictures = {
        "1": Image.fromarray(grey > 0), "L": Image.fromarray(grey), "LA": Image.fromarray(grey).convert("LA"),
        "P": Image.fromarray(grey).convert("P"), "RGB": Image.fromarray(grey).convert("RGB"),
        "RGBA": Image.fromarray(grey).convert("RGBA"),
    }
    for mode, picture in pictures.items():
        picture.save(tmp_path / f"{mode}.png")
    grey16_png(tmp_path / "I16.png", grey.astype(np.uint16) * 257)
    data = load_dataset(str(tmp_path))
    assert data.images.shape == (7, 3, 2, 2)
    for image in data.images:
        for channel in image:
            np.testing.assert_array_equal(channel, grey)
    for mode in ("RGB", "RGBA", "P"):
        (tmp_path / f"{mode}.png").unlink()
    grey_only = load_dataset(str(tmp_path))
    assert grey_only.images.shape == (4, 1, 2, 2) and (grey_only.images[:, 0] == grey).all()


def test_a_gzip_idx_file_is_held_once_while_read(tmp_path):
    """The size bound (memory_limit: half the machine, for two copies in all) passed a 7.8 GB gzip IDX
    that read_idx then held twice (the inflated bytes and a writable copy): a MemoryError traceback."""
    side, count = 28, 4000  # 3.1 MB of pixels
    pixels = np.random.default_rng(0).integers(0, 256, (count, side, side), dtype=np.uint8)
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (count, side, side)) + pixels.tobytes())
    tracemalloc.start()
    try:
        images = read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(images, pixels)
    assert images.flags.writeable
    # one copy, plus the bounded buffers of a chunked read
    assert peak < pixels.nbytes + 2 * READ_CHUNK, f"read_idx held {peak / pixels.nbytes:.2f} copies of the data"
