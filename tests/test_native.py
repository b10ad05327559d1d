"""The native sampler (onnxgan.runtime._native) against onnxruntime, PyTorch and a numpy reference on
the same z: every MLP model (mlp, mlp-bn, conditional, fp16), batch sizes 0, 1, odd and large, max abs
error <= 1e-4; identical output for 1, 2 and 3 threads; the portable, AVX2 and AVX-512 kernels on
random odd shapes; the latent RNG bit for bit; the fp16 weight mode within its stated bound; the default
precision following the file; on a float16 file the same images as onnxruntime's; input checks."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from kit import make_mlp, write_checkpoint
from onnxgan.export.onnx_export import export_checkpoint
from onnxgan.runtime import Sampler
from onnxgan.runtime.latent import latent
from onnxgan.runtime.pixels import measure_agreement
from onnxgan.train.checkpoint import load_checkpoint
from onnxgan.train.config import ModelConfig
from onnxgan.train.models import build_models

from onnxgan.runtime import _native  # every install builds it

TOLERANCE = 1e-4  # max abs error, images in [-1, 1]
FP16_WEIGHTS_BOUND = 2e-3  # weights rounded to fp16 (a float16 file, precision="float16") vs the fp32 model
BATCHES = [0, 1, 7, 300]


def kernel_available(kernel: str) -> bool:
    try:
        _native.Model.from_bytes(make_mlp(3, [2]).SerializeToString(), kernel=kernel)
        return True
    except ValueError:
        return False


def reference_generate(model: onnx.ModelProto, z: np.ndarray) -> np.ndarray:
    """numpy float64 reference for make_mlp graphs, the same signature as Model.generate: (N, 1, 1, W)."""
    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    x = z.astype(np.float64)
    for node in model.graph.node:
        if node.op_type == "Gemm":
            x = x @ weights[node.input[1]].T + weights[node.input[2]]
        elif node.op_type == "MatMul":
            x = x @ weights[node.input[1]]
        elif node.op_type == "Add":
            x = x + weights[node.input[1]]
        elif node.op_type == "LeakyRelu":
            x = np.where(x < 0, 0.2 * x, x)
        elif node.op_type == "Relu":
            x = np.maximum(x, 0)
        elif node.op_type == "Sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif node.op_type == "Tanh":
            x = np.tanh(x)
    return x.reshape(len(z), 1, 1, x.shape[1])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (model.onnx bytes, PyTorch reference G, torch tolerance) for the seed-size MLP models,
    all written by gan-export's code path (conditional: 10 classes, a label embedding in G)."""
    folder = tmp_path_factory.mktemp("native")
    found = {}
    variants = {"mlp": ("mlp", 0, False), "mlp-bn": ("mlp-bn", 0, False), "fp16": ("mlp", 0, True),
                "conditional": ("mlp", 10, False), "conditional-fp16": ("mlp", 10, True)}
    for name, (model, classes, fp16) in variants.items():
        names = tuple(str(c) for c in range(classes))
        config = ModelConfig(name=model, num_classes=classes, class_names=names).resolved()
        checkpoint = write_checkpoint(folder / f"{name}.pt", config, seed=3)
        G = build_models(config)[0]
        G.load_state_dict(load_checkpoint(checkpoint)["G"])
        tolerance = FP16_WEIGHTS_BOUND if fp16 else TOLERANCE
        found[name] = (export_checkpoint(checkpoint, "float16" if fp16 else "float32").data, G.eval(), tolerance)
    return found


def inputs(num_classes: int, n: int, seed: int = 11):
    z = latent(n, 100, seed)  # (n, 100)
    labels = (np.arange(n, dtype=np.int64) * 7) % num_classes if num_classes else None
    return z, labels


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("name", ["mlp", "mlp-bn", "fp16", "conditional"])
def test_native_matches_onnxruntime_and_torch(models, name, n):
    data, G, torch_tolerance = models[name]
    native = _native.Model.from_bytes(data)
    z, labels = inputs(native.num_classes, n)
    ours = native.generate(z, labels)
    assert ours.shape == (n, 1, 28, 28) and ours.dtype == np.float32
    feeds = {"z": z} if labels is None else {"z": z, "label": labels}
    theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(["image"], feeds)[0]
    with torch.no_grad():
        args = (torch.from_numpy(z),) if labels is None else (torch.from_numpy(z), torch.from_numpy(labels))
        reference = G(*args).numpy()
    if n:
        assert np.abs(ours - theirs).max() <= TOLERANCE, f"{name} n={n}: native vs onnxruntime"
        assert np.abs(ours - reference).max() <= torch_tolerance, f"{name} n={n}: native vs PyTorch"


@pytest.mark.parametrize("name", ["mlp", "conditional"])
def test_identical_output_for_1_2_and_3_threads(models, name):
    data = models[name][0]
    runs = {threads: _native.Model.from_bytes(data, threads=threads) for threads in (1, 2, 3)}
    assert [m.threads for m in runs.values()] == [1, 2, 3]
    for n in (1, 7, 31, 32, 300):
        z, labels = inputs(runs[1].num_classes, n)
        one = runs[1].generate(z, labels)
        for threads in (2, 3):
            assert np.array_equal(runs[threads].generate(z, labels), one), f"n={n}: {threads} threads differ from 1"


@pytest.mark.parametrize("kernel", ["portable", "avx2", "avx512"])
@pytest.mark.parametrize("matmul", [False, True], ids=["gemm", "matmul_add"])
def test_kernels_match_the_numpy_reference_on_random_shapes(kernel, matmul):
    if not kernel_available(kernel):
        pytest.skip(f"this CPU or build has no {kernel} kernel")
    rng = np.random.default_rng(7)
    for trial in range(12):
        latent_dim = int(rng.choice([1, 3, 16, 17, 100]))
        widths = [int(w) for w in rng.choice([1, 2, 15, 16, 17, 33, 64, 100], size=int(rng.integers(1, 4)))]
        activations = [str(a) for a in rng.choice(["Relu", "LeakyRelu", "Tanh", "Sigmoid"], size=len(widths))]
        model = make_mlp(latent_dim, widths, activations, matmul=matmul, seed=trial)
        native = _native.Model.from_bytes(model.SerializeToString(), threads=2, kernel=kernel)
        for n in (0, 1, 5, 6, 7, 40):
            z = latent(n, latent_dim, trial)
            error = np.abs(native.generate(z) - reference_generate(model, z)).max(initial=0.0)
            assert error <= 1e-5, f"{kernel}: latent {latent_dim}, widths {widths} {activations}, n={n}: error {error:.2g}"


@pytest.mark.parametrize("n, latent_dim, seed", [(0, 5, 1), (1, 1, 0), (3, 7, 42), (64, 100, 2**64 - 1), (5, 3, 123456789)])
def test_latent_is_bit_for_bit_the_python_rng(n, latent_dim, seed):
    ours = _native.latent(n, latent_dim, seed)
    assert ours.dtype == np.float32 and ours.shape == (n, latent_dim)
    assert np.array_equal(ours, latent(n, latent_dim, seed))


def test_float16_weights_mode_stays_within_its_bound(models):
    data = models["mlp"][0]
    exact, half = _native.Model.from_bytes(data), _native.Model.from_bytes(data, precision="float16")
    assert (exact.precision, half.precision) == ("float32", "float16")
    for n in (1, 7, 300):
        z = latent(n, 100, 3)
        error = np.abs(half.generate(z) - exact.generate(z)).max()
        assert error <= FP16_WEIGHTS_BOUND, f"n={n}: fp16 weights error {error:.2g}"


@pytest.mark.parametrize("kernel", ["portable", "avx2", "avx512"])
def test_the_default_precision_follows_the_file(models, kernel):
    if not kernel_available(kernel):
        pytest.skip(f"no {kernel} kernel on this CPU")
    full, half = models["mlp"][0], models["fp16"][0]  # float32 and float16 files of the same checkpoint
    stays_half = "float32" if kernel == "portable" else "float16"  # portable: scalar widening costs more
    assert _native.Model.from_bytes(full, kernel=kernel).precision == "float32"
    assert _native.Model.from_bytes(half, kernel=kernel).precision == stays_half
    for precision in ("float32", "float16"):  # an explicit precision overrides the file's
        for data in (full, half):
            assert _native.Model.from_bytes(data, kernel=kernel, precision=precision).precision == precision
    # fp16 in memory holds the file's values exactly: the images are bit for bit those of fp32 storage.
    z = latent(300, 100, 8)
    for n in (1, 7, 300):  # the matrix-vector, small and large batch paths
        default, widened = (_native.Model.from_bytes(half, kernel=kernel, precision=p).generate(z[:n])
                            for p in ("auto", "float32"))
        assert np.array_equal(default, widened), f"{kernel} n={n}"


@pytest.mark.parametrize("name", ["fp16", "conditional-fp16"])
def test_a_float16_file_gives_onnxruntimes_images_on_the_native_kernel(models, name):
    data = models[name][0]
    native, ort_sampler = (Sampler(data, backend=backend, device="cpu") for backend in ("native", "onnxruntime"))
    kernel = _native.Model.from_bytes(data).kernel
    assert native.info()["precision"] == ("float32" if kernel == "portable" else "float16")
    agreement = measure_agreement(ort_sampler, native, 2000, seed=9)
    # The same weights, computed in float32 by both: pixels move only where a value lies within float
    # rounding of a .5 boundary, at most one grey level (docs/native.md: "Same images on every backend?").
    assert agreement.passes and agreement.differing <= agreement.pixels // 10_000, str(agreement)


def test_attributes_and_loading_from_a_path_or_bytes(models, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(models["conditional"][0])
    from_path, from_bytes = _native.Model(str(path), threads=1), _native.Model.from_bytes(path.read_bytes(), threads=1)
    for model in (from_path, from_bytes):
        assert (model.latent_dim, model.image_shape, model.num_classes, model.threads) == (100, (1, 28, 28), 10, 1)
        assert model.value_range == (-1.0, 1.0) and model.kernel in ("portable", "avx2", "avx512")
    z, labels = inputs(10, 9)
    assert np.array_equal(from_path.generate(z, labels), from_bytes.generate(z, labels))
    assert _native.Model.from_bytes(models["mlp"][0]).threads >= 1  # threads=0: the usable cores, at most 8


def test_generate_checks_its_inputs(models):
    plain, conditional = (_native.Model.from_bytes(models[name][0], threads=1) for name in ("mlp", "conditional"))
    z = latent(4, 100, 0)
    with pytest.raises(ValueError, match="z must be float32, got float64"):
        plain.generate(z.astype(np.float64))
    with pytest.raises(ValueError, match=r"z must have shape \(N, 100\), got \(4, 99\)"):
        plain.generate(z[:, :99])
    with pytest.raises(ValueError, match="unconditional: pass no labels"):
        plain.generate(z, np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="conditional: pass labels"):
        conditional.generate(z)
    with pytest.raises(ValueError, match="labels must be an int64 array"):
        conditional.generate(z, np.zeros(4, dtype=np.int32))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\), got \(3,\)"):
        conditional.generate(z, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="label 10 at row 2 is outside 0..9"):
        conditional.generate(z, np.array([0, 1, 10, 2], dtype=np.int64))
    assert np.array_equal(plain.generate(np.asfortranarray(z)), plain.generate(z))  # layout is not dtype: accepted
    for kwargs, message in [({"threads": -1}, "threads must be 0"), ({"precision": "int8"}, "precision must be"),
                            ({"kernel": "cuda"}, "kernel must be")]:
        with pytest.raises(ValueError, match=message):
            _native.Model.from_bytes(models["mlp"][0], **kwargs)
