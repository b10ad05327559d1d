"""onnxgan.runtime: the Sampler API, its input checks, refusals of foreign or broken files, the metadata
reader, the auto backend's choice, a process that samples without ever importing torch or onnx, and the
pixel criterion for rounded weights."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from onnxgan.errors import UserError
from onnxgan.runtime import Sampler, latent
from onnxgan.runtime.backends import cuda_device_present
from onnxgan.runtime.contract import ModelInfo
from onnxgan.runtime.onnx_meta import NotOnnx, read_header
from onnxgan.runtime.pixels import PixelAgreement, compare_pixels, measure_agreement
from onnxgan.runtime.sampler import slerp

from kit import conditional_model, foreign_model, with_metadata

# The fast path beside its reference: both backends run the same tests (every install builds the kernel).
BACKENDS = ["onnxruntime", "native"]


@pytest.fixture(params=BACKENDS)
def sampler(request, tiny_model):
    return Sampler(tiny_model, backend=request.param, device="cpu")


def test_sample_shapes_dtypes_and_determinism(sampler):
    images = sampler.sample(5, seed=3)
    assert images.shape == (5, 8, 8) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, sampler.sample(5, seed=3))
    np.testing.assert_array_equal(sampler.sample(2, seed=3), images[:2])  # rows depend on (seed, row) only
    assert not np.array_equal(sampler.sample(5, seed=4), images)
    assert sampler.sample(0).shape == (0, 8, 8)


def test_generate_takes_z_from_latent_and_stays_in_range(sampler):
    z = latent(7, 8, 11)
    np.testing.assert_array_equal(sampler.latent(7, 11), z)
    images = sampler.generate(z)
    assert images.shape == (7, 1, 8, 8) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    np.testing.assert_array_equal(sampler.generate(np.asfortranarray(z)), images)  # layout does not matter
    assert sampler.generate(z[:0]).shape == (0, 1, 8, 8)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="only onnxruntime is built in this install")
def test_backends_agree(tiny_model):
    z = latent(33, 8, 5)
    reference = Sampler(tiny_model, backend="onnxruntime", device="cpu").generate(z)
    for backend in BACKENDS[1:]:
        np.testing.assert_allclose(Sampler(tiny_model, backend=backend).generate(z), reference, atol=1e-5,
                                   err_msg=f"{backend} vs onnxruntime, z (33, 8)")


@pytest.mark.parametrize("z, what", [
    (np.zeros((2, 8), np.float64), "float64"),
    (np.zeros((2, 9), np.float32), "(2, 9)"),
    (np.zeros((16,), np.float32), "(16,)"),
    (np.zeros((2, 8, 1), np.float32), "(2, 8, 1)"),
    ([[0.0] * 8], "list"),
])
def test_generate_refuses_wrong_dtypes_and_shapes_before_running(sampler, z, what):
    with pytest.raises(UserError, match=r"z must be a float32 array of shape \(N, 8\)") as caught:
        sampler.generate(z)
    assert what in str(caught.value)


def test_unconditional_models_refuse_labels(sampler):
    with pytest.raises(UserError, match="unconditional"):
        sampler.sample(2, labels=1)
    with pytest.raises(UserError, match="unconditional"):
        sampler.generate(latent(2, 8, 0), np.zeros(2, np.int64))


def test_info_names_the_model_backend_and_provider(sampler, tiny_model):
    info = sampler.info()
    assert info["source"] == str(tiny_model)
    assert (info["model"], info["latent_dim"], info["image_shape"], info["num_classes"]) == ("mlp", 8, [1, 8, 8], 0)
    assert info["class_names"] == [] and info["value_range"] == [-1.0, 1.0]
    assert info["latent_rng"] == "splitmix64-boxmuller-v1" and info["weights_dtype"] == info["precision"] == "float32"
    assert info["backend"] in BACKENDS
    assert info["provider"] == {"onnxruntime": "CPUExecutionProvider", "native": "native-cpu"}[info["backend"]]
    json.dumps(info)  # plain data


def test_interpolation_runs_from_one_seed_to_the_other(sampler):
    walk = sampler.interpolate(1, 2, steps=5)
    assert walk.shape == (5, 8, 8)
    np.testing.assert_array_equal(walk[0], sampler.sample(1, seed=1)[0])
    np.testing.assert_array_equal(walk[-1], sampler.sample(1, seed=2)[0])
    with pytest.raises(UserError, match="at least 2 steps"):
        sampler.interpolate(1, 2, steps=1)


def test_slerp_keeps_the_norm_of_equal_norm_vectors_and_handles_parallel_ones():
    a, b = np.array([3.0, 0.0], np.float32), np.array([0.0, 3.0], np.float32)
    path = slerp(a, b, np.linspace(0, 1, 7))  # (7, 2)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0, rtol=1e-6)
    np.testing.assert_allclose(path[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(slerp(a, 2 * a, np.array([0.5])), [1.5 * a], rtol=1e-6)  # parallel: the line


def test_conditional_models_take_labels(tmp_path):
    path, (embedding, weight, bias) = conditional_model(tmp_path / "c.onnx")
    sampler = Sampler(path)
    assert sampler.info()["class_names"] == ["c0", "c1", "c2"]
    z = latent(4, 4, 0)
    labels = np.array([2, 0, 1, 2], np.int64)
    expected = np.tanh(np.concatenate([z, embedding[labels]], axis=1) @ weight.T + bias).reshape(4, 1, 2, 2)
    np.testing.assert_allclose(sampler.generate(z, labels), expected, atol=1e-6)
    np.testing.assert_array_equal(sampler.labels(5, None), [0, 1, 2, 0, 1])  # default: cycle the classes
    np.testing.assert_array_equal(sampler.labels(3, 1), [1, 1, 1])
    np.testing.assert_array_equal(sampler.sample(4, labels=[2, 0, 1, 2]),
                                  sampler.sample(4, labels=np.array([2, 0, 1, 2])))
    with pytest.raises(UserError, match=r"labels must be in 0\.\.2, got 0\.\.3"):
        sampler.sample(2, labels=[0, 3])
    with pytest.raises(UserError, match=r"labels must be an int64 array of shape \(4,\)"):
        sampler.generate(z)
    with pytest.raises(UserError, match=r"shape \(4,\)"):
        sampler.generate(z, labels[:3])
    with pytest.raises(UserError, match="labels must be an integer"):
        sampler.sample(2, labels=0.5)


def test_auto_decides_from_the_graph_and_says_why(tmp_path, tiny_model):
    info = Sampler(tiny_model, device="cpu").info()
    assert (info["backend"], info["backend_reason"]) == ("native", "auto: the native reader takes it and the model "
                                                                   "runs on the CPU")
    renamed = with_metadata(tiny_model, tmp_path / "named.onnx", model=json.dumps("dcgan"))  # names decide nothing
    assert Sampler(renamed, device="cpu").info()["backend"] == "native"
    model = onnx.load(tiny_model)
    next(node for node in model.graph.node if node.op_type == "Tanh").op_type = "Softplus"  # onnxruntime has it
    onnx.save(model, tmp_path / "softplus.onnx")
    info = Sampler(tmp_path / "softplus.onnx", device="cpu").info()
    assert info["backend"] == "onnxruntime"
    assert info["backend_reason"].startswith("auto: the native reader does not take it (op 'Softplus'")
    assert Sampler(tiny_model, backend="onnxruntime").info()["backend_reason"] == "asked for"
    with pytest.raises(UserError, match="the native kernel cannot run it .*op 'Softplus'"):
        Sampler(tmp_path / "softplus.onnx", backend="native")


@pytest.mark.skipif(cuda_device_present(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error_and_auto_stays_on_the_cpu(tiny_model, capfd):
    with pytest.raises(UserError, match="--device cuda: onnxruntime finds no usable CUDA GPU"):
        Sampler(tiny_model, device="cuda")
    assert Sampler(tiny_model, backend="onnxruntime").info()["provider"] == "CPUExecutionProvider"
    assert capfd.readouterr().err == ""  # the probe is quiet


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "tensorrt"}, "backend must be one of"),
    ({"device": "tpu"}, "device must be one of"),
    ({"threads": 0}, r"threads must be in 1\.\.256"),
    ({"threads": 1000}, r"threads must be in 1\.\.256"),  # onnxruntime would start them all and hang
])
def test_bad_options_are_refused(tiny_model, kwargs, message):
    with pytest.raises(UserError, match=message):
        Sampler(tiny_model, **kwargs)


def test_foreign_onnx_gets_a_clear_message(tmp_path):
    with pytest.raises(UserError, match="not an onnxgan generator; make one with gan-export"):
        Sampler(foreign_model(tmp_path / "f.onnx"))


def test_files_that_are_not_onnx_or_missing_are_refused(tmp_path, tiny_model):
    (tmp_path / "text.onnx").write_text("hello, I am not a model\n")
    (tmp_path / "cut.onnx").write_bytes(tiny_model.read_bytes()[:5000])
    for path, message in [(tmp_path / "text.onnx", "not an ONNX model"),
                          (tmp_path / "cut.onnx", r"the file is cut short \(.*\); copy or export it again"),
                          (tmp_path / "missing.onnx", "no such file"),
                          (tmp_path, "is a folder")]:
        with pytest.raises(UserError, match=message):
            Sampler(path)


@pytest.mark.parametrize("changes, message", [  # tests/test_contract.py has every kind, on both readers
    ({"onnxgan_format": "2"}, "'onnxgan_format' is not supported: format 2 .* upgrade onnxgan or re-export"),
    ({"latent_dim": None}, "'latent_dim' is missing: re-export the model with gan-export"),
    ({"latent_dim": "{"}, "'latent_dim' has the wrong type: expected an integer"),
    ({"num_classes": "2", "class_names": '["a"]'}, "'class_names' is out of range: 1 names for 2 classes"),
    ({"latent_rng": '"mt19937"'}, "'latent_rng' is not supported: 'mt19937' is unknown .* upgrade onnxgan"),
    ({"num_classes": "2"}, "'num_classes' disagrees with the graph: 2, but the graph has no label input"),
])
def test_broken_metadata_is_refused_with_the_reason(tmp_path, tiny_model, changes, message):
    with pytest.raises(UserError, match=message):
        Sampler(with_metadata(tiny_model, tmp_path / "m.onnx", **changes), backend="onnxruntime")


def test_metadata_reader_agrees_with_the_onnx_package(tiny_model, tmp_path):
    model = onnx.load(tiny_model)
    header = read_header(tiny_model.read_bytes())
    assert header.metadata == {p.key: p.value for p in model.metadata_props}
    assert ModelInfo.from_metadata(header.metadata, "t").latent_dim == 8
    assert [(v.name, v.elem_type, v.dims) for v in header.inputs] == [("z", TensorProto.FLOAT, (None, 8))]
    assert [(v.name, v.elem_type, v.dims) for v in header.outputs] == [("image", TensorProto.FLOAT, (None, 1, 8, 8))]
    unicode = with_metadata(tiny_model, tmp_path / "u.onnx", note=json.dumps("Zahlen · 数字"), extra="")
    assert read_header(unicode.read_bytes()).metadata["note"] == json.dumps("Zahlen · 数字")


@pytest.mark.parametrize("data, message", [
    (b"", "no ir_version or graph"),
    (b"\x08\x08", "no ir_version or graph"),  # ir_version only
    (b"\x08", "truncated"),  # a key without its varint
    (b"\x08\x80", "truncated"),  # an unfinished varint
    (b"\x08" + b"\xff" * 10 + b"\x01", "overlong"),
    (b"\x3a\xff\xff\xff\xff\x0f", "runs past the end"),  # graph claims 4 GiB
    (b"\x08\x08\x3a\x10\x00", "runs past the end"),  # the same after ir_version: a model cut short
    (b"\x0b", "wire type 3"),
    (b"\x00", "field number 0"),
    (b"\x08\x08\x3a\x00\x72\x02\x08\x01", "not a string"),  # metadata key given as a varint
    (b"\x08\x08\x3a\x00\x70\x01", "not a message"),  # metadata entry given as a varint
    (b"\x08\x08\x3a\x00\x72\x03\x0a\x01\xff", "not UTF-8"),
    (b"\x08\x08\x38\x01", "the graph is not a message"),  # graph given as a varint
    (b"\x08\x08\x3a\x05\x5a\x03\x0a\x01\xff", "a name is not UTF-8"),  # a graph input named b"\xff"
    (b"\x08\x08\x3a\x04\x62\x02\x10\x01", "a type is not a message"),  # a graph output's type as a varint
])
def test_metadata_reader_refuses_malformed_bytes(data, message):
    with pytest.raises(NotOnnx, match=message):
        read_header(data)


def test_the_runtime_samples_without_importing_torch_or_onnx(tiny_model, tmp_path):
    script = f"""
import sys
from click.testing import CliRunner
from onnxgan.runtime import Sampler
from onnxgan.runtime.cli import main
assert Sampler({str(tiny_model)!r}).sample(4).shape == (4, 8, 8)
result = CliRunner().invoke(main, [{str(tiny_model)!r}, "-n", "4", "-o", {str(tmp_path / "g.png")!r}])
assert result.exit_code == 0, result.output
leaked = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnx"))
assert not leaked, leaked
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "g.png").is_file()


def pixels_with(changes: dict[int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded uint8 image set (size,) and a copy whose pixel i moved by changes[i] grey levels."""
    reference = np.random.default_rng(0).integers(10, 246, size=size, dtype=np.uint8)
    candidate = reference.copy()
    for index, levels in changes.items():
        candidate[index] = int(reference[index]) + levels
    return reference, candidate


@pytest.mark.parametrize("changes, size, passes", [
    ({}, 1000, True),
    ({0: 1}, 1000, True),                        # 999 of 1000 equal: exactly 99.9%
    ({0: 1, 500: -1}, 1000, False),              # 998 of 1000
    ({i: 1 for i in range(0, 100_000, 9_000)}, 10_000 * 10, True),      # 12 of 100,000 differ: 99.988%
    ({i: -1 for i in range(0, 100_000, 999)}, 10_000 * 10, False),      # 101 of 100,000: 99.899%, just below
    ({7: 2}, 1_000_000, False),                  # one pixel of a million, but two grey levels
])
def test_the_pixel_criterion_on_constructed_cases(changes, size, passes):
    agreement = compare_pixels(*pixels_with(changes, size))
    assert (agreement.pixels, agreement.differing) == (size, len(changes))
    assert agreement.max_levels == max((abs(v) for v in changes.values()), default=0)
    assert agreement.passes is passes
    assert ("criterion >= 99.9%, <= 1: met" if passes else ": not met") in str(agreement)


def test_the_pixel_criterion_sees_through_uint8_wrap_around_and_pools_batches():
    dark, light = np.zeros((2, 3), np.uint8), np.full((2, 3), 255, np.uint8)
    assert compare_pixels(dark, light).max_levels == 255  # not (0 - 255) % 256 == 1
    at_threshold = compare_pixels(*pixels_with({0: 1}, 1000))
    below = compare_pixels(*pixels_with({0: 1, 1: 1}, 1000))
    assert (at_threshold + at_threshold).passes and not (at_threshold + below).passes
    assert (at_threshold + below) == PixelAgreement(2000, 3, 1)
    with pytest.raises(ValueError, match="two uint8 arrays of one shape"):
        compare_pixels(dark, dark.astype(np.int16))
    with pytest.raises(ValueError, match="two uint8 arrays of one shape"):
        compare_pixels(dark, light[:1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_measure_agreement_pools_batches_of_the_same_z(tmp_path, backend):
    conditional_model(tmp_path / "a.onnx", seed=1)
    conditional_model(tmp_path / "b.onnx", seed=2)  # other weights: other images
    a, b = (Sampler(tmp_path / name, backend=backend, device="cpu") for name in ("a.onnx", "b.onnx"))
    assert measure_agreement(a, a, 2500, seed=3, batch=1000) == PixelAgreement(2500 * 4, 0, 0)
    whole = compare_pixels(a.sample(2500, seed=3), b.sample(2500, seed=3))
    assert measure_agreement(a, b, 2500, seed=3, batch=1000) == whole and whole.differing > 0


@pytest.mark.parametrize("backend", ["native", "onnxruntime"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nonfinite_z_is_refused_on_every_backend(tiny_model, backend, bad):
    """The native kernel's tanh clamp made a NaN z a black image with no error; onnxruntime's made NaN."""
    sampler = Sampler(tiny_model, backend=backend, device="cpu")
    z = sampler.latent(3, seed=0)
    z[2, 1] = bad
    with pytest.raises(UserError, match="z holds NaN or Inf"):
        sampler.generate(z)


def test_sampler_repr_close_and_with(tiny_model):
    with Sampler(tiny_model, backend="native") as sampler:
        assert repr(sampler) == (f"Sampler({str(tiny_model)!r}, model='mlp', latent_dim=8, image_shape=(1, 8, 8), "
                                 "backend='native')")
        assert sampler.sample(2).shape == (2, 8, 8)
    assert repr(sampler).endswith(", closed)")
    for call in (lambda: sampler.sample(2), sampler.info):
        with pytest.raises(UserError, match="this Sampler is closed"):
            call()
    sampler.close()  # twice is fine


def test_labels_take_class_names(tmp_path):
    model, _ = conditional_model(tmp_path / "c.onnx")
    sampler = Sampler(model)
    assert "classes=3" in repr(sampler)
    np.testing.assert_array_equal(sampler.sample(4, labels="c2"), sampler.sample(4, labels=2))
    np.testing.assert_array_equal(sampler.sample(3, labels=["c2", "0", 1]), sampler.sample(3, labels=[2, 0, 1]))
    np.testing.assert_array_equal(sampler.interpolate(1, 2, 3, label="c1"), sampler.interpolate(1, 2, 3, label=1))
    for bad in ("c9", "3", "-1"):
        with pytest.raises(UserError, match="no such class; use 0..2 or one of c0, c1, c2"):
            sampler.sample(2, labels=bad)
