"""Malformed and unsupported files through the native module: each gives a ValueError with a specific
message, never a crash. The committed tests/data/native_tiny.onnx (conditional, fp16 weights) is
truncated at every byte and mutated at random; other files are edited with the onnx package.
(cpp/tests/test_model.cpp runs the same kinds of attack on the C ABI, also under ASan/UBSan.)"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import DATA
from onnxgan.runtime.contract import ModelInfo
from onnxgan.runtime.latent import latent
from test_native import make_mlp

from onnxgan.runtime import _native  # every install builds it

TINY = DATA / "native_tiny.onnx"


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
    model = load(TINY.read_bytes())
    assert (model.latent_dim, model.image_shape, model.num_classes) == (6, (1, 3, 4), 3)
    run_once(model)


def test_truncated_at_every_byte():
    data = TINY.read_bytes()
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


def test_random_byte_changes_fail_cleanly_or_still_run():
    data = bytearray(TINY.read_bytes())
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
    next(n for n in model.graph.node if n.op_type == "Gemm").op_type = "Conv"
    refused(model, "op 'Conv'")
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
    conditional = onnx.load(TINY)
    helper.set_model_props(conditional, {**{p.key: p.value for p in conditional.metadata_props},
                                         "num_classes": "4", "class_names": "[]"})
    refused(conditional, "metadata 'num_classes' disagrees with the graph: 4, the label embedding has 3 rows")
