"""Data loaders: every format reads to uint8 (N, C, H, W), and every fault is one line naming the file."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from onnxgan.datasets import DataError, read_idx
from onnxgan.train.data import load_dataset, load_mnist


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_pair(folder, images, labels, gz=False):
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    with opener(folder / f"train-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(images))
    with opener(folder / f"train-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(labels))


def test_bundled_mnist_has_the_published_shape_and_labels():
    data = load_mnist("train")
    assert data.images.shape == (60000, 1, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.shape == (60000,) and set(np.unique(data.labels)) == set(range(10))
    assert data.class_names == tuple("0123456789")
    # The first training digit of MNIST is a 5; its pixels span the whole byte range.
    assert data.labels[0] == 5 and data.images[0].max() == 255 and data.images[0].min() == 0


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_reads_images_and_labels(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 5, 6)), rng.integers(0, 3, 7)
    write_idx_pair(tmp_path, images, labels, gz)
    data = load_dataset(str(tmp_path))
    np.testing.assert_array_equal(data.images[:, 0], images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.image_shape == (1, 5, 6)


def test_npy_and_npz_arrays(tmp_path):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "grey.npy", grey)
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "grey.npy")).images[:, 0], grey)

    colour = rng.random((3, 8, 8, 3)).astype(np.float32)  # floats in [0, 1]
    np.savez(tmp_path / "colour.npz", images=colour, labels=np.array([0, 2, 1]))
    data = load_dataset(str(tmp_path / "colour.npz"))
    assert data.images.shape == (3, 3, 8, 8)
    np.testing.assert_array_equal(data.images, np.rint(colour * 255).astype(np.uint8).transpose(0, 3, 1, 2))
    assert data.class_names == ("0", "1", "2")

    signed = np.linspace(-1, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)  # floats in [-1, 1]
    np.save(tmp_path / "signed.npy", signed)
    pixels = load_dataset(str(tmp_path / "signed.npy")).images
    assert pixels.min() == 0 and pixels.max() == 255


def test_image_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(2)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    data = load_dataset(str(tmp_path))
    assert data.images.shape == (4, 1, 6, 5)
    assert data.class_names == ("cat", "dog") and data.labels.tolist() == [0, 0, 1, 1]


def bad_cases(tmp_path):
    """(name, data spec, file the message must name, words the message must hold)."""
    good_images = np.zeros((3, 4, 4), dtype=np.uint8)
    cases = []

    wrong_magic = tmp_path / "magic" / "train-images-idx3-ubyte"
    wrong_magic.parent.mkdir()
    wrong_magic.write_bytes(b"\x12\x34\x08\x03" + bytes(64))
    cases.append(("wrong magic", wrong_magic, wrong_magic, "magic"))

    truncated = tmp_path / "trunc" / "train-images-idx3-ubyte"
    truncated.parent.mkdir()
    truncated.write_bytes(idx_bytes(good_images)[:-5])
    cases.append(("truncated", truncated, truncated, "truncated"))

    truncated_gz = tmp_path / "truncgz" / "train-images-idx3-ubyte.gz"
    truncated_gz.parent.mkdir()
    truncated_gz.write_bytes(gzip.compress(idx_bytes(good_images))[:-12])
    cases.append(("truncated gzip", truncated_gz, truncated_gz, "cannot read"))

    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    write_idx_pair(mismatch, good_images, np.zeros(2))
    cases.append(("count mismatch", mismatch, mismatch / "train-labels-idx1-ubyte", "2 labels for 3 images"))

    hostile = tmp_path / "hostile" / "train-images-idx3-ubyte"
    hostile.parent.mkdir()
    hostile.write_bytes(bytes([0, 0, 8, 3]) + (2**31 - 1).to_bytes(4, "big") * 3)
    cases.append(("hostile size", hostile, hostile, "declares"))

    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append(("empty folder", empty, empty, "no images"))

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("L", (3, 3)).save(mixed / "a.png")
    Image.new("L", (5, 4)).save(mixed / "b.png")
    cases.append(("mixed sizes under 4 pixels", mixed, mixed, "pass --image-size N"))

    garbage = tmp_path / "garbage" / "x.png"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a png")
    cases.append(("garbage image", garbage.parent, garbage, "not a readable image"))

    cases.append(("missing", tmp_path / "nope", tmp_path / "nope", "no such file"))
    return cases


def test_every_bad_data_case_is_one_error_naming_the_file(tmp_path):
    for name, spec, culprit, words in bad_cases(tmp_path):
        with pytest.raises(DataError) as caught:
            load_dataset(str(spec))
        message = str(caught.value)
        assert str(culprit) in message and words in message, f"{name}: {message}"
        assert "\n" not in message, name


def test_idx_reader_rejects_trailing_bytes(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(4)) + b"junk")
    with pytest.raises(DataError, match="after the declared data"):
        read_idx(path)


def test_folders_of_mixed_sizes_and_modes_are_fitted_and_converted(tmp_path):
    """--image-size N: shorter side to N, centre crop; --channels forces grey or RGB; without them, mixed
    sizes are fitted to the smallest side (a multiple of 4) and one colour image makes the set RGB."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 6:34] = (255, 0, 0)  # red between black edges: the centre crop (source columns 10-30) is all red
    Image.fromarray(wide).save(folder / "a_wide.png")
    Image.fromarray(np.full((30, 10), 200, np.uint8)).save(folder / "b_tall_grey.png")
    Image.fromarray(np.full((24, 24, 4), 90, np.uint8), "RGBA").save(folder / "c_rgba.png")

    fitted = load_dataset(str(folder), image_size=16)
    assert fitted.images.shape == (3, 3, 16, 16)
    assert (fitted.images[0, 0] > 250).all() and (fitted.images[0, 1:] < 5).all()  # all red, no black edge
    assert (fitted.images[1] == 200).all()  # grey tiled to RGB
    grey = load_dataset(str(folder), image_size=8, channels=1)
    assert grey.images.shape == (3, 1, 8, 8) and grey.images[1].min() == 200
    as_found = load_dataset(str(folder))
    assert as_found.images.shape == (3, 3, 8, 8) and "fitted to 8x8" in as_found.source  # smallest side 10 -> 8
    with pytest.raises(DataError, match="apply to folders of images"):
        load_dataset("mnist", image_size=16)


def test_colour_or_large_data_defaults_to_a_conv_g_and_dry_run_says_why(tmp_path):
    from click.testing import CliRunner

    from onnxgan.train.cli import main as gan_train

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, size in enumerate([(40, 30), (36, 52), (64, 64)]):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    dry = CliRunner().invoke(gan_train, ["--data", str(folder), "--dry-run", "--out", str(tmp_path / "r")])
    assert dry.exit_code == 0, dry.output
    printed = json.loads(dry.stdout)
    assert printed["model"]["name"] == "dcgan" and printed["model"]["image_shape"] == [3, 28, 28]
    assert printed["model_choice"].startswith("dcgan: the data is 3x28x28 (colour)")
    assert "model dcgan" in dry.stderr
    chosen = CliRunner().invoke(gan_train, ["--data", str(folder), "--model", "mlp", "--channels", "1",
                                            "--image-size", "32", "--dry-run", "--out", str(tmp_path / "r")])
    assert json.loads(chosen.stdout)["model"]["name"] == "mlp" and json.loads(chosen.stdout)["model_choice"] is None
    mnist = CliRunner().invoke(gan_train, ["--dry-run", "--out", str(tmp_path / "r")])
    assert json.loads(mnist.stdout)["model"]["name"] == "mlp-bn" and "model " not in mnist.stderr
