"""Conv generators on the native kernel: every conv model gan-export writes (dcgan, dcgan-upsample,
dcgan-fc; grey and RGB; conditional and not; float16 weights) gives onnxruntime's pixels on the same z
(the pixel criterion of runtime/pixels.py) and images within 1e-4 of them; the portable, AVX2 and
AVX-512 kernels against the numpy reference (tests/native_reference.py) on random convolutions
(kernels, strides, pads, dilations, output padding, odd sides and channel counts, batch 0, 1 and
odd sizes); identical output for 1, 2 and 3 threads; backend "auto" picks the native kernel."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from kit import write_checkpoint
from native_reference import make_conv_generator, reference_generate
from onnxgan.export.onnx_export import export_checkpoint
from onnxgan.runtime import Sampler
from onnxgan.runtime.latent import latent
from onnxgan.runtime.pixels import measure_agreement
from onnxgan.train.config import ModelConfig

from onnxgan.runtime import _native  # every install builds it

KERNELS = ["portable", "avx2", "avx512"]
# Small widths (the architectures are the models' own): the tests stay quick on two cores.
VARIANTS = {  # name -> (model, image_shape, classes, g_hidden, weights)
    "dcgan": ("dcgan", (1, 28, 28), 0, (32, 16), "float32"),
    "dcgan-rgb-cond": ("dcgan", (3, 16, 16), 10, (32, 16), "float32"),
    "dcgan-upsample": ("dcgan-upsample", (1, 28, 28), 0, (32, 16), "float32"),
    "dcgan-upsample-rgb-cond": ("dcgan-upsample", (3, 16, 16), 10, (32, 16), "float32"),
    "dcgan-fc": ("dcgan-fc", (1, 28, 28), 0, (64, 32, 16), "float32"),
    "dcgan-fc-rgb-cond": ("dcgan-fc", (3, 16, 16), 10, (64, 32, 16), "float32"),
    "dcgan-fp16": ("dcgan", (1, 28, 28), 10, (32, 16), "float16"),
}


def kernel_available(kernel: str) -> bool:
    model = make_conv_generator(3, (2, 2, 2), [{"op": "Conv", "out": 1, "kernel": (1, 1)}])
    try:
        _native.Model.from_bytes(model.SerializeToString(), kernel=kernel)
        return True
    except ValueError:
        return False


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> model.onnx bytes written by gan-export's code path (seeded random BatchNorm statistics)."""
    folder = tmp_path_factory.mktemp("conv")
    found = {}
    for name, (model, shape, classes, hidden, weights) in VARIANTS.items():
        config = ModelConfig(name=model, image_shape=shape, g_hidden=hidden, num_classes=classes,
                             class_names=tuple(str(c) for c in range(classes))).resolved()
        found[name] = export_checkpoint(write_checkpoint(folder / f"{name}.pt", config, seed=4), weights).data
    return found


@pytest.mark.parametrize("name", list(VARIANTS))
def test_conv_models_give_onnxruntimes_pixels(exported, name):
    data = exported[name]
    native = Sampler(data, backend="native")
    assert native.info()["backend"] == "native"
    agreement = measure_agreement(Sampler(data, backend="onnxruntime"), native, 2000, seed=3, batch=500)
    assert agreement.passes, f"{name}: {agreement}"
    for n in (1, 7, 40):
        z, labels = native.latent(n, 5), native.labels(n, None)
        ours = native.generate(z, labels)
        feeds = {"z": z} if labels is None else {"z": z, "label": labels}
        theirs = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(["image"], feeds)[0]
        assert ours.shape == theirs.shape == (n, *VARIANTS[name][1])
        assert np.abs(ours - theirs).max() <= 1e-4, f"{name} n={n}: native vs onnxruntime"


def test_backend_auto_picks_the_native_kernel_for_conv_models(exported):
    info = Sampler(exported["dcgan-upsample-rgb-cond"], device="cpu").info()
    assert info["backend"] == "native", info


@pytest.mark.parametrize("name", ["dcgan-rgb-cond", "dcgan-upsample"])
def test_identical_output_for_1_2_and_3_threads(exported, name):
    runs = {threads: _native.Model.from_bytes(exported[name], threads=threads) for threads in (1, 2, 3)}
    for n in (1, 5, 16, 17, 40):
        z = latent(n, 100, n)
        labels = np.arange(n, dtype=np.int64) % 10 if runs[1].num_classes else None
        one = runs[1].generate(z, labels)
        for threads in (2, 3):
            assert np.array_equal(runs[threads].generate(z, labels), one), f"n={n}: {threads} threads differ from 1"


def random_steps(rng) -> tuple[tuple[int, int, int], list[dict]]:
    """A start image (C, H, W) and 1-3 random steps whose images stay between 1 and 40 pixels a side."""
    channels, height, width = int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
    start, steps = (channels, height, width), []
    for _ in range(int(rng.integers(1, 4))):
        op = str(rng.choice(["Conv", "ConvTranspose", "Resize"]))
        if op == "Resize":
            scales = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            if height * scales[0] > 40 or width * scales[1] > 40:
                continue
            steps.append({"op": op, "scales": scales})
            height, width = height * scales[0], width * scales[1]
            continue
        kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        spans = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = [int(rng.integers(0, spans[i % 2] + 1)) for i in range(4)]
        step = {"op": op, "out": int(rng.integers(1, 20)), "kernel": kernel, "strides": stride, "pads": pads,
                "dilations": dilation, "act": rng.choice([None, "Relu", "LeakyRelu", "Tanh", "Sigmoid"])}
        if op == "Conv":
            sides = [(s + pads[i] + pads[i + 2] - spans[i] - 1) // stride[i] + 1 for i, s in enumerate((height, width))]
        else:
            step["output_padding"] = [int(rng.integers(0, stride[i])) for i in range(2)]
            sides = [stride[i] * (s - 1) + step["output_padding"][i] + spans[i] + 1 - pads[i] - pads[i + 2]
                     for i, s in enumerate((height, width))]
        if not all(1 <= side <= 40 for side in sides):
            continue
        steps.append(step)
        channels, (height, width) = step["out"], sides
    if not steps:
        steps.append({"op": "Conv", "out": 2, "kernel": (1, 1)})
    return start, steps


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_match_the_numpy_reference_on_random_convolutions(kernel):
    if not kernel_available(kernel):
        pytest.skip(f"this CPU or build has no {kernel} kernel")
    rng = np.random.default_rng(21)
    for trial in range(16):
        start, steps = random_steps(rng)
        classes = int(rng.choice([0, 3]))
        model = make_conv_generator(5, start, steps, classes, seed=trial)
        native = _native.Model.from_bytes(model.SerializeToString(), threads=2, kernel=kernel)
        for n in (0, 1, 3, 18):
            z = latent(n, 5, trial)
            labels = np.arange(n, dtype=np.int64) % classes if classes else None
            ours = native.generate(z, labels)
            expected = reference_generate(model, z, labels)
            assert ours.shape == expected.shape, f"{kernel}: {start} {steps} n={n}"
            error = np.abs(ours - expected).max(initial=0.0)
            assert error <= 2e-5, f"{kernel}: start {start}, steps {steps}, n={n}: error {error:.2g}"


def test_the_reference_agrees_with_onnxruntime(exported):
    """The numpy reference itself against onnxruntime, on gan-export's graphs and on random ones."""
    import onnx

    rng = np.random.default_rng(5)
    models = [onnx.load_from_string(exported[name]) for name in ("dcgan-rgb-cond", "dcgan-upsample", "dcgan-fc")]
    models += [make_conv_generator(5, *random_steps(rng), seed=i) for i in range(6)]
    for model in models:
        latent_dim = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
        z = latent(4, latent_dim, 1)
        feeds = {"z": z}
        if len(model.graph.input) > 1 and model.graph.input[1].name == "label":
            feeds["label"] = np.arange(4, dtype=np.int64)
        theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["image"], feeds)[0]
        assert np.abs(reference_generate(model, z, feeds.get("label")) - theirs).max() <= 1e-5


@pytest.mark.parametrize("kernel", KERNELS)
def test_lines_wider_than_a_block_are_split(kernel):
    """Work items of at most 24 pixels (Network::kConvBlockRows) cut a 150-pixel line; a 150-pixel phase of a
    transposed conv too."""
    if not kernel_available(kernel):
        pytest.skip(f"this CPU or build has no {kernel} kernel")
    steps = [{"op": "Resize", "scales": (1, 5)},
             {"op": "Conv", "out": 16, "kernel": (3, 3), "pads": (1, 1, 1, 1), "act": "Relu"},
             {"op": "ConvTranspose", "out": 32, "kernel": (3, 4), "strides": (1, 2), "pads": (1, 1, 1, 1), "act": "Tanh"}]
    model = make_conv_generator(4, (2, 3, 30), steps, seed=1)  # 16 and 32 channels: the gather form (conv.h)
    native = _native.Model.from_bytes(model.SerializeToString(), threads=2, kernel=kernel)
    z = latent(3, 4, 0)
    ours = native.generate(z)
    assert ours.shape == (3, 32, 3, 300)
    assert np.abs(ours - reference_generate(model, z)).max() <= 2e-5


@pytest.mark.parametrize("transform, rounding", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                                                 ("pytorch_half_pixel", "round_prefer_ceil")])
def test_resize_modes_that_mean_whole_factor_nearest_give_onnxruntimes_images(transform, rounding):
    model = make_conv_generator(3, (2, 3, 5), [{"op": "Resize", "scales": (3, 2)},
                                               {"op": "Conv", "out": 2, "kernel": (3, 3), "pads": (1, 1, 1, 1)}])
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    for attribute in resize.attribute:
        attribute.s = {"coordinate_transformation_mode": transform, "nearest_mode": rounding}.get(attribute.name, "nearest").encode()
    z = latent(4, 3, 2)
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["image"], {"z": z})[0]
    ours = _native.Model.from_bytes(model.SerializeToString()).generate(z)
    assert np.abs(ours - theirs).max() <= 1e-5


def test_upsample_of_opset_9_is_read_like_resize():
    model = make_conv_generator(3, (2, 3, 5), [{"op": "Resize", "scales": (2, 3)},
                                               {"op": "Conv", "out": 2, "kernel": (3, 3), "pads": (1, 1, 1, 1)}])
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    upsample = helper.make_node("Upsample", [resize.input[0], resize.input[2]], list(resize.output), mode="nearest")
    model.graph.node.insert(list(model.graph.node).index(resize), upsample)
    model.graph.node.remove(resize)
    model.opset_import[0].version = 9
    z = latent(4, 3, 2)
    ours = _native.Model.from_bytes(model.SerializeToString()).generate(z)
    assert np.abs(ours - reference_generate(model, z)).max() <= 1e-5
