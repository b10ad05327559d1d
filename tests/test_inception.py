"""Standard FID for any data: onnxgan's Inception features and scores against pytorch-fid's computation
(re-created in tests/fid_reference.py) on the same seeded random weights and the same image files; the
.pth reader (both torch.save layouts, hostile pickles), the hand-written ONNX, the weights' download
and gan-eval --real as a real command. No network: the weights are random, the download a file:// URL."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fid_reference as ref
from onnxgan.datasets import load_path
from onnxgan.errors import UserError
from onnxgan.quality.inception import InceptionFeatures, build_model, to_input
from onnxgan.quality.inception_scores import InceptionEvaluator
from onnxgan.quality.inception_weights import download, resolve_weights
from onnxgan.quality.pth import PthError, load_state_dict

TINY_DCGAN = Path(__file__).parent / "data" / "tiny_dcgan.onnx"
SET_SIZE = 16  # images per set: each costs about half a second in the torch reference on 2 cores


@pytest.fixture(scope="module")
def network(tmp_path_factory, image_sets):
    """(the reference torch network, its weights saved as pytorch-fid's file is: the legacy layout)."""
    model = ref.random_inception(0, [ref.load_images(files(folder)[:6]) for folder in image_sets[:2]])
    return model, ref.save_weights(model, tmp_path_factory.mktemp("weights") / "inception.pth", legacy=True)


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory):
    """Three folders of PNGs (seeded): 'real' grey 28x28 blobs, 'fake' RGB 40x40 pictures of another
    kind, 'dim' more blobs at 70% brightness (near 'real': a small FID); 16 images each."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("images")
    for name in ("real", "fake", "dim"):
        (root / name).mkdir()
    yy, xx = np.mgrid[0:28, 0:28]

    def blob() -> np.ndarray:  # (28, 28) float: a Gaussian spot at a random place and size, plus noise
        cy, cx, r = rng.uniform(8, 20), rng.uniform(8, 20), rng.uniform(3, 8)
        return np.clip(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) + rng.normal(0, 8, (28, 28)), 0, 255)

    for i in range(SET_SIZE):
        Image.fromarray(blob().astype(np.uint8), "L").save(root / "real" / f"{i:02d}.png")
        Image.fromarray((blob() * 0.7).astype(np.uint8), "L").save(root / "dim" / f"{i:02d}.png")
        stripes = (np.sin(np.arange(40) * rng.uniform(0.2, 1.2))[None, :, None] * 100 + 128
                   + rng.normal(0, 20, (40, 40, 3)) + rng.uniform(-60, 60, 3))  # (40, 40, 3)
        Image.fromarray(np.clip(stripes, 0, 255).astype(np.uint8), "RGB").save(root / "fake" / f"{i:02d}.png")
    return root / "real", root / "fake", root / "dim"


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def test_reader_gives_torchs_tensors_in_both_layouts(network, tmp_path):
    model, legacy = network
    zipped = ref.save_weights(model, tmp_path / "zip.pth", legacy=False)
    assert zipfile.is_zipfile(zipped) and not zipfile.is_zipfile(legacy)
    expected = {k: v.numpy() for k, v in model.state_dict().items()}
    for path in (legacy, zipped):
        weights = load_state_dict(path)
        assert weights.keys() == expected.keys()
        for name, array in expected.items():
            assert weights[name].dtype == array.dtype and np.array_equal(weights[name], array), name


def test_reader_reads_strided_views(tmp_path):
    """A transposed and a sliced tensor share one storage: the strides and offset must be followed."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    path = tmp_path / "views.pth"
    for legacy in (True, False):
        torch.save({"t": base.t(), "s": base[1:, 2:5], "h": base.half()}, path, _use_new_zipfile_serialization=not legacy)
        weights = load_state_dict(path)
        assert np.array_equal(weights["t"], base.t().numpy()) and np.array_equal(weights["s"], base[1:, 2:5].numpy())
        assert weights["h"].dtype == np.float16


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_reader_refuses_code_in_the_pickle(tmp_path, layout):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", pickle.dumps({"w": _RunsCode(str(marker))}))
    else:
        path.write_bytes(b"".join(pickle.dumps(x) for x in (0x1950A86A20F9469CFC6C, 1001, {}, _RunsCode(str(marker)))))
    with pytest.raises(PthError, match="pathlib.*refused: unpickling would run it"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) - 1000], "truncated"),
    (lambda data: b"not a pickle at all", "not a readable PyTorch state dict"),
    (lambda data: b"", "not a readable PyTorch state dict"),
])
def test_reader_refuses_damaged_files(tmp_path, damage, message):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(1000)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(PthError, match=message):
        load_state_dict(path)


def test_reader_refuses_views_that_repeat_a_storage(tmp_path):
    """A stride-0 view of 4 elements declaring 4 x 10^12 of them would make a 16 TB copy."""
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(4, 1, 1)[:, :1].expand(4, 10**6, 10**6)}, path)
    with pytest.raises(PthError, match="elements from a 4-element storage"):
        load_state_dict(path)
    with pytest.raises(PthError, match="not a regular file"):
        load_state_dict(tmp_path)


def test_other_weights_are_refused_by_name(tmp_path, network):
    model, _ = network
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    weights["Mixed_6b.branch7x7_2.conv.weight"] = weights["Mixed_6b.branch7x7_2.conv.weight"][:, :, :, :5]
    with pytest.raises(PthError, match=r"Mixed_6b.branch7x7_2.conv.weight is float32 \(128, 128, 1, 5\)"):
        build_model(weights, tmp_path / "w.pth")
    del weights["Mixed_7c.branch_pool.bn.running_var"]
    with pytest.raises(PthError, match="no tensor Mixed_6b|is float32"):
        build_model(weights, tmp_path / "w.pth")


def test_the_written_onnx_passes_the_checker(network):
    import onnx

    model = onnx.load_from_string(build_model(load_state_dict(network[1]), network[1]))
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["features"] and model.ir_version == 8


@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 37, 53, 3), (2, 299, 299, 1), (1, 420, 310, 3), (1, 1, 1)])
def test_resize_and_normalisation_equal_pytorch_fids(shape):
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    rgb = images[..., None] if images.ndim == 3 else images
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(0, 3, 1, 2).expand(-1, 3, -1, -1)
    expected = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    # torch computes the source coordinates in float32 (onnxgan in float64): 4e-5 apart at a 420-pixel side,
    # 1/200 of a grey level.
    assert np.abs(to_input(images) - expected.numpy()).max() < 1e-4, shape


def test_features_equal_pytorch_fids(network, image_sets):
    model, weights = network
    paths = files(image_sets[0])[:4] + files(image_sets[1])[:4]
    expected = ref.features(model, ref.load_images(paths[:4])), ref.features(model, ref.load_images(paths[4:]))
    ours = InceptionFeatures(weights)
    grey = load_path(str(image_sets[0])).images[:4, 0]  # (4, 28, 28): tiled to RGB inside
    rgb = load_path(str(image_sets[1])).images[:4].transpose(0, 2, 3, 1)  # (4, 40, 40, 3)
    for got, want in zip((ours.features(grey), ours.features(rgb)), expected):
        assert got.shape == (4, 2048)
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.slow
def test_fid_and_kid_equal_pytorch_fids_within_1e3(network, image_sets):
    """The goal of issue 23: the same weights and image files give the same FID and KID. Equal set sizes
    under KID's subset size: its subsets are then the whole sets, as in the reference's formula."""
    model, weights = network
    real_files, fake_files = files(image_sets[0]), files(image_sets[1])
    real_features = ref.features(model, ref.load_images(real_files))
    fake_features = ref.features(model, ref.load_images(fake_files))
    dim_features = ref.features(model, ref.load_images(files(image_sets[2])))
    evaluator = InceptionEvaluator(InceptionFeatures(weights), load_path(str(image_sets[0])).images[:, 0], "real")
    fake = load_path(str(image_sets[1])).images.transpose(0, 2, 3, 1)  # (16, 40, 40, 3)
    dim = load_path(str(image_sets[2])).images[:, 0]  # (16, 28, 28)
    for images, features in ((fake, fake_features), (dim, dim_features)):
        result = evaluator.evaluate(images)
        fid = ref.frechet_distance(features, real_features)
        kid = ref.kernel_inception_distance(features, real_features)
        assert result["fid"] == pytest.approx(fid, rel=1e-3) and result["kid"] == pytest.approx(kid, rel=1e-3)
        assert result["n"] == len(images) and result["real_n"] == len(real_files)
    assert evaluator.evaluate(dim)["fid"] < evaluator.evaluate(fake)["fid"] / 3  # the scores see the difference


def test_download_checks_the_published_checksum(tmp_path, network):
    _, weights = network
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    target = tmp_path / "cache" / "w.pth"
    assert download(weights.as_uri(), target, sha256_prefix=digest[:8]) == target
    assert target.read_bytes() == weights.read_bytes()
    other = tmp_path / "cache" / "other.pth"
    with pytest.raises(UserError, match="does not begin with the published 00000000; nothing was kept"):
        download(weights.as_uri(), other, sha256_prefix="00000000")
    assert list(other.parent.iterdir()) == [target]  # no partial or temp file
    with pytest.raises(UserError, match="cannot download"):
        download((tmp_path / "absent.pth").as_uri(), other)


def test_weights_come_from_the_option_or_the_cache(tmp_path, monkeypatch, network):
    monkeypatch.setenv("ONNXGAN_CACHE", str(tmp_path / "cache"))
    assert resolve_weights(None) is None
    assert resolve_weights(str(network[1])) == network[1]
    with pytest.raises(UserError, match="no such file; pass --inception pt_inception-2015-12-05-6726825d.pth"):
        resolve_weights(str(tmp_path / "absent.pth"))
    cached = tmp_path / "cache" / "pt_inception-2015-12-05-6726825d.pth"
    cached.parent.mkdir()
    cached.write_bytes(network[1].read_bytes())
    assert resolve_weights(None) == cached and resolve_weights("download") == cached  # once: no second download


def gan_eval(*args: str, cache: Path) -> subprocess.CompletedProcess:
    """The installed gan-eval, with its own empty cache (never the user's)."""
    env = {**os.environ, "ONNXGAN_CACHE": str(cache)}
    return subprocess.run([Path(sys.executable).parent / "gan-eval", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_gan_eval_real_scores_a_model_against_a_folder(tmp_path, network, image_sets):
    out = tmp_path / "metrics.json"
    run = gan_eval(str(TINY_DCGAN), "-n", "10", "--real", str(image_sets[1]), "--inception", str(network[1]),
                   "-o", str(out), cache=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert result["features"] == "Inception-v3 pool3 (pytorch-fid)" and result["real_n"] == 10
    assert result["fid"] > 0 and 0 <= result["recall"] <= 1 and "class_histogram" not in result
    assert "against" in run.stdout and "Inception-v3 pool3" in run.stdout


@pytest.mark.parametrize("args, message", [
    (["--real", "{fake}"], "--real needs Inception weights: pass --inception pt_inception"),
    (["--real", "{fake}", "--inception", "{absent}"], "no such file"),
    (["--inception", "{weights}"], "--inception is for scoring against --real DATA"),
    (["--real", "{absent}", "--inception", "{weights}"], "no such file or folder"),
    (["--real", "{fake}", "--inception", "{model}"], "not a readable PyTorch state dict"),
])
def test_gan_eval_real_mistakes_are_one_line(tmp_path, network, image_sets, args, message):
    values = {"fake": image_sets[1], "absent": tmp_path / "absent", "weights": network[1], "model": TINY_DCGAN}
    run = gan_eval(str(TINY_DCGAN), "-n", "10", *[a.format(**values) for a in args], cache=tmp_path)
    assert run.returncode == 2 and message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_gan_eval_without_weights_says_what_to_pass(tmp_path):
    run = gan_eval(str(TINY_DCGAN), "-n", "10", cache=tmp_path)
    assert run.returncode == 0
    assert "for FID on any images pass --real DATA with --inception pt_inception" in run.stdout


def rgb_data(path: Path, count: int = 128) -> Path:
    """A seeded .npz of RGB 8x8 pictures (N, H, W, C): data that is not MNIST-shaped."""
    images = np.random.default_rng(3).integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
    np.savez(path, images=images)
    return path


@pytest.mark.slow
def test_training_on_rgb_data_scores_in_inception_features_by_default(tmp_path, network):
    from click.testing import CliRunner

    from onnxgan.train.cli import main as gan_train

    out = tmp_path / "run"
    args = ["--data", str(rgb_data(tmp_path / "rgb.npz")), "--model", "dcgan", "--g-hidden", "8,4", "--d-hidden",
            "4,8", "--batch-size", "16", "--steps", "4", "--eval-every", "4", "--eval-samples", "100",
            "--inception", str(network[1]), "--out", str(out)]
    result = CliRunner().invoke(gan_train, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scored = [row for row in rows if "fid" in row]
    assert len(scored) == 1 and scored[0]["step"] == 4
    assert scored[0]["features"] == "Inception-v3 pool3 (pytorch-fid)" and scored[0]["real_n"] == 100
    assert 0 <= scored[0]["recall"] <= 1 and 0 <= scored[0]["precision"] <= 1  # for the failure warnings


def test_training_without_weights_says_what_to_pass_and_on_refuses(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from onnxgan.train.cli import main as gan_train

    monkeypatch.setenv("ONNXGAN_CACHE", str(tmp_path / "empty-cache"))
    args = ["--data", str(rgb_data(tmp_path / "rgb.npz")), "--model", "dcgan", "--g-hidden", "8,4", "--d-hidden",
            "4,8", "--batch-size", "16", "--steps", "2", "--eval-every", "2", "--eval-samples", "100"]
    quiet = CliRunner().invoke(gan_train, [*args, "--out", str(tmp_path / "a")])
    assert quiet.exit_code == 0 and "pass --inception pt_inception-2015-12-05-6726825d.pth" in quiet.stderr
    refused = CliRunner().invoke(gan_train, [*args, "--eval-real", "--out", str(tmp_path / "b")])
    assert refused.exit_code == 2 and "--eval-real on needs Inception weights" in refused.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())  # nothing written
