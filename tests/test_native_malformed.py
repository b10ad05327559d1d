"""Malformed and unsupported files through the native module: each gives a ValueError with a specific
message, never a crash. The committed tests/data/native_tiny.onnx (conditional, fp16 weights),
tiny_dcgan.onnx and native_conv.onnx (conv generators) are truncated at every byte and mutated at random; other files, MLP
and conv generators, are edited with the onnx package.
(cpp/tests/test_model.cpp runs the same kinds of attack on the C ABI, also under ASan/UBSan.)"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kit import DATA, NATIVE_TINY, make_mlp
from onnxgan.runtime.contract import ModelInfo
from onnxgan.runtime.latent import latent
from native_reference import make_conv_generator

from onnxgan.runtime import _native  # every install builds it

TINY_CONV = DATA / "tiny_dcgan.onnx"  # gan-export's dcgan (Gemm, Reshape, ConvTranspose x 2), fp32
ODD_CONV = DATA / "native_conv.onnx"  # every path of cpp/src/conv.cpp, odd shapes (native_make_models.py)


def load(data: bytes):
    return _native.Model.from_bytes(data, threads=1)


def refused(model: onnx.ModelProto, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(model.SerializeToString())


def run_once(model) -> None:
    """Generate 3 images: they have the model's shape, or a changed weight became NaN/Inf and the
    kernel refuses to generate (FloatingPointError: garbage is never returned as images)."""
    labels = np.zeros(3, dtype=np.int64) if model.num_classes else None
    try:
        images = model.generate(latent(3, model.latent_dim, 0), labels)
    except FloatingPointError:
        return
    assert images.shape == (3, *model.image_shape)


def test_the_tiny_model_loads_and_runs():
    model = load(NATIVE_TINY.read_bytes())
    assert (model.latent_dim, model.image_shape, model.num_classes) == (6, (1, 3, 4), 3)
    run_once(model)


@pytest.mark.parametrize("path", [NATIVE_TINY, TINY_CONV, ODD_CONV], ids=["mlp", "dcgan", "odd-conv"])
def test_truncated_at_every_byte(path):
    data = path.read_bytes()
    without_metadata = onnx.load_from_string(data)
    del without_metadata.metadata_props[:]
    metadata_start = len(without_metadata.SerializeToString())  # metadata_props (field 14) are written last
    for size in range(len(data)):
        try:
            run_once(load(data[:size]))
        except ValueError as e:
            assert str(e), f"prefix of {size} bytes: an empty message"
        else:
            assert size >= metadata_start, f"a prefix of {size} bytes (graph cut short) was accepted"


@pytest.mark.parametrize("path", [NATIVE_TINY, TINY_CONV, ODD_CONV], ids=["mlp", "dcgan", "odd-conv"])
def test_random_byte_changes_fail_cleanly_or_still_run(path):
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for _ in range(500):
        changed = bytearray(data)
        for position in rng.integers(0, len(data), size=int(rng.integers(1, 5))):
            changed[position] = int(rng.integers(0, 256))
        try:
            model = load(bytes(changed))
        except ValueError:
            continue
        run_once(model)


def test_not_onnx_at_all():
    for data, message in [(b"", "no graph"), (b"\x3a\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "runs past the end"),
                          (b"\x0b\x00", "wire type 3"), (b"hello world", ".")]:
        with pytest.raises(ValueError, match=message):
            load(data)
    with pytest.raises(ValueError, match="cannot open"):
        _native.Model("/nonexistent/model.onnx")


def first_weight(model: onnx.ModelProto) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == "w0")


def test_wrong_dims():
    model = make_mlp(4, [8, 3])
    weight = first_weight(model)
    weight.dims[:] = [4, 8]  # the same number of values, transposed
    refused(model, r"tensor 'w0' has dims \(4, 8\), expected \(out, 4\) with transB=1")
    weight.dims[:] = [8, 5]  # more values than raw_data holds
    refused(model, "declares 40 elements of 4 bytes but raw_data holds 128 bytes")


def test_huge_declared_sizes():
    model = make_mlp(4, [8, 3])
    first_weight(model).dims[:] = [2**40, 2**40]
    refused(model, "absurd size")
    model = make_mlp(4, [8, 3])
    weight = first_weight(model)
    weight.ClearField("raw_data")
    weight.dims[:] = [2**20, 4]  # typed storage that holds nothing
    refused(model, "declares 4194304 elements but holds 0")


def test_wrong_dtypes():
    model = make_mlp(4, [8, 3])
    weight = first_weight(model)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float64), "w0"))
    refused(model, "tensor 'w0' is float64; weights must be float32 or float16")
    model = make_mlp(4, [8, 3])
    half = numpy_helper.from_array(numpy_helper.to_array(first_weight(model)).astype(np.float16), "w0")
    first_weight(model).CopyFrom(half)  # fp16 weights without the Cast the contract requires
    refused(model, "float16 weights must pass through Cast")


def test_typed_fields_are_read_like_raw_data():
    model = make_mlp(4, [8, 3])
    expected = load(model.SerializeToString()).generate(latent(5, 4, 1))
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            values = numpy_helper.to_array(tensor).reshape(-1)
            tensor.ClearField("raw_data")
            tensor.float_data[:] = values
    assert np.array_equal(load(model.SerializeToString()).generate(latent(5, 4, 1)), expected)


def test_missing_tensor():
    model = make_mlp(4, [8, 3])
    model.graph.initializer.remove(first_weight(model))
    refused(model, "reads 'w0', which is never defined")


def test_external_data_is_refused():
    model = make_mlp(4, [8, 3])
    weight = first_weight(model)
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="weights.bin")
    refused(model, "external file")


@pytest.mark.parametrize("op", ["Softplus", "Elu", "Selu"])
def test_unsupported_activation_is_named(op):
    model = make_mlp(4, [8, 3])
    next(n for n in model.graph.node if n.op_type == "Tanh").op_type = op
    refused(model, f"op '{op}'")


def test_unsupported_graphs_are_named():
    model = make_mlp(4, [8, 3])
    next(n for n in model.graph.node if n.op_type == "Gemm").op_type = "ConvInteger"
    refused(model, "op 'ConvInteger'")
    model = make_mlp(4, [8, 3])  # a branch: the second layer reads the first layer's input again
    next(n for n in model.graph.node if n.op_type == "Gemm" and n.input[1] == "w1").input[0] = "z"
    refused(model, "branches")
    model = make_mlp(4, [8, 3])
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    refused(model, "default ONNX opset")


def test_metadata_that_disagrees_with_the_graph_body():
    # The contract's checks on metadata and interface are in tests/test_contract.py, on both readers; these
    # two need the graph's body, which only the native reader walks (onnxruntime fails at run time).
    model = make_mlp(4, [8, 3])
    del model.metadata_props[:]
    info = ModelInfo(model="m", latent_dim=4, image_shape=(1, 1, 3), num_classes=0, class_names=(),
                     training_step=0, package_version="0")
    helper.set_model_props(model, info.to_metadata())
    shape = next(t for t in model.graph.initializer if t.name == "shape")
    shape.CopyFrom(numpy_helper.from_array(np.array([-1, 1, 3, 1], dtype=np.int64), "shape"))
    refused(model, r"metadata 'image_shape' disagrees with the graph: the layers make 3 values per image")
    conditional = onnx.load(NATIVE_TINY)
    helper.set_model_props(conditional, {**{p.key: p.value for p in conditional.metadata_props},
                                         "num_classes": "4", "class_names": "[]"})
    refused(conditional, "metadata 'num_classes' disagrees with the graph: 4, the label embedding has 3 rows")


def conv_model() -> onnx.ModelProto:
    """z -> Gemm -> (3, 5, 5) -> Resize x2 -> Conv 3x3 -> ConvTranspose 4x4/2 -> image (1, 20, 20)."""
    return make_conv_generator(4, (3, 5, 5), [
        {"op": "Resize", "scales": (2, 2)},
        {"op": "Conv", "out": 4, "kernel": (3, 3), "pads": (1, 1, 1, 1), "act": "Relu"},
        {"op": "ConvTranspose", "out": 1, "kernel": (4, 4), "strides": (2, 2), "pads": (1, 1, 1, 1), "act": "Tanh"}])


def node(model: onnx.ModelProto, op: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op)


def set_attribute(model: onnx.ModelProto, op: str, name: str, value) -> onnx.ModelProto:
    target = node(model, op)
    kept = [a for a in target.attribute if a.name != name]
    del target.attribute[:]
    target.attribute.extend([*kept, helper.make_attribute(name, value)])
    return model


def set_weight(model: onnx.ModelProto, name: str, shape: tuple[int, ...]) -> onnx.ModelProto:
    tensor = next(t for t in model.graph.initializer if t.name == name)
    tensor.CopyFrom(numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name))
    return model


def test_the_conv_model_loads_and_runs():
    model = load(conv_model().SerializeToString())
    assert model.image_shape == (1, 20, 20)
    run_once(model)


@pytest.mark.parametrize("edit, message", [
    (lambda m: set_attribute(m, "Conv", "group", 3), r"\(Conv\): group 3 is not supported"),
    (lambda m: set_attribute(m, "Conv", "auto_pad", "SAME_UPPER"), r"\(Conv\): auto_pad 'SAME_UPPER'"),
    (lambda m: set_attribute(m, "Conv", "strides", [0, 1]), r"\(Conv\): strides \(0, 1\) is outside 1..16"),
    (lambda m: set_attribute(m, "Conv", "strides", [1, 1000]), r"\(Conv\): strides \(1, 1000\) is outside"),
    (lambda m: set_attribute(m, "Conv", "strides", [1]), r"\(Conv\): strides must have 2 values"),
    (lambda m: set_attribute(m, "Conv", "dilations", [0, 1]), r"\(Conv\): dilations \(0, 1\) is outside 1..16"),
    (lambda m: set_attribute(m, "Conv", "pads", [3, 1, 1, 1]), r"\(Conv\): pads \(3, 1, 1, 1\) reach beyond"),
    (lambda m: set_attribute(m, "Conv", "pads", [-1, 1, 1, 1]), r"\(Conv\): pads .* is outside"),
    (lambda m: set_attribute(m, "Conv", "kernel_shape", [3, 2]), r"\(Conv\): kernel_shape disagrees"),
    (lambda m: set_weight(m, "k1", (4, 3, 40, 40)), r"\(Conv\): kernel \(40, 40\) is outside 1..32"),
    (lambda m: set_weight(m, "k1", (4, 2, 3, 3)), r"\(Conv\): the weight \(4, 2, 3, 3\) takes 2 input channels, the image has 3"),
    (lambda m: set_weight(m, "k1", (4, 3, 3)), r"\(Conv\): the weight must be 4-D"),
    (lambda m: set_weight(m, "kb1", (5,)), r"\(Conv\): the bias has 5 values for 4 output channels"),
    (lambda m: set_weight(m, "k2", (3, 1, 4, 4)), r"\(ConvTranspose\): the weight \(3, 1, 4, 4\) takes 3 input"),
    (lambda m: set_attribute(m, "ConvTranspose", "output_padding", [2, 0]), r"\(ConvTranspose\): output_padding \(2, 0\) must be smaller"),
    (lambda m: set_attribute(m, "ConvTranspose", "output_shape", [20, 20]), r"\(ConvTranspose\): output_shape is not supported"),
    (lambda m: set_attribute(m, "ConvTranspose", "pads", [4, 4, 4, 4]), r"\(ConvTranspose\): pads .* reach beyond"),
    (lambda m: set_attribute(m, "Resize", "mode", "linear"), r"\(Resize\): mode 'linear' is not supported"),
    (lambda m: set_attribute(m, "Resize", "coordinate_transformation_mode", "align_corners"), r"\(Resize\): coordinate_transformation_mode 'align_corners'"),
    (lambda m: set_weight(m, "scales0", (4,)), r"\(Resize\): the scales must be 4 values \(1, 1"),
    (lambda m: next(t for t in m.graph.initializer if t.name == "scales0").CopyFrom(
        numpy_helper.from_array(np.array([1, 1, 1.5, 2], dtype=np.float32), "scales0")) or m, r"\(Resize\): scale 1.5"),
    (lambda m: next(t for t in m.graph.initializer if t.name == "scales0").CopyFrom(
        numpy_helper.from_array(np.array([1, 1, 4000, 2], dtype=np.float32), "scales0")) or m, r"\(Resize\): scale 4000"),
    (lambda m: node(m, "Resize").input.extend(["scales0"]) or m, r"\(Resize\): sizes is not supported"),
    (lambda m: set_attribute(m, "Conv", "strides", [16, 16]) and set_attribute(m, "Conv", "pads", [0, 0, 0, 0]),
     r"\(Conv\): its output would be empty|disagrees with the graph"),
], ids=["group", "auto-pad", "zero-stride", "huge-stride", "stride-count", "zero-dilation", "pad-beyond-kernel",
        "negative-pad", "kernel-shape", "huge-kernel", "mismatched-channels", "3d-weight", "bias-length",
        "transposed-channels", "output-padding", "output-shape", "transposed-pads", "resize-linear",
        "align-corners", "scales-on-channels", "fractional-scale", "huge-scale", "resize-sizes", "shrinks"])
def test_conv_attributes_are_checked(edit, message):
    refused(edit(conv_model()), message)


def test_huge_images_are_refused():
    model = make_conv_generator(4, (65, 16, 16), [{"op": "Resize", "scales": (16, 16)}])
    refused(model, r"\(Resize\): its output image \(65, 256, 256\) has more than 4194304 values")


def test_conv_graphs_the_kernel_cannot_run_are_named():
    model = conv_model()  # a convolution on the features, before the Reshape to an image
    reshape = node(model, "Reshape")
    node(model, "Resize").input[0] = reshape.input[0]
    model.graph.node.remove(reshape)
    refused(model, r"\(Resize\): its input must be an image")
    model = conv_model()  # BatchNorm left in the graph (gan-export folds it)
    node(model, "Relu").op_type = "BatchNormalization"
    refused(model, "op 'BatchNormalization'")
    model = conv_model()  # an activation after an upsampling, with no convolution to fuse into
    resize = node(model, "Resize")
    model.graph.node.insert(list(model.graph.node).index(resize) + 1, helper.make_node("Relu", [resize.output[0]], ["r"]))
    node(model, "Conv").input[0] = "r"
    refused(model, r"\(Relu\): activations are supported only right after")
