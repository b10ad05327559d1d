"""Regenerate the native sampler's committed test models and their golden outputs (no torch needed).

    /work/venv/bin/python tests/data/native_make_models.py

native_tiny.onnx: a conditional MLP generator with fp16 weights behind Casts, as docs/onnx-contract.md
allows: z (N, 6) + label (N,) in 0..2 -> Gather(embedding (3, 4)) -> Concat -> Gemm 10->16 LeakyRelu(0.2)
-> MatMul + Add 16->13 Relu -> Gemm 13->12 Tanh -> Reshape (-1, 1, 3, 4). It exercises every construct
the validator accepts, in under 2 KB, so the C++ tests can truncate it at every byte.
native_tiny_golden.txt: onnxruntime's image for z = latent(3, 6, seed=7), labels [0, 1, 2] (what
onnxgan_sample(model, 3, 7, NULL, ...) computes), one float per line, (3, 1, 3, 4) row-major.
native_conv.onnx: a conditional RGB conv generator with odd shapes that reaches every path of
cpp/src/conv.cpp (tests/native_reference.py builds it): z (N, 6) + label -> Gemm -> (3, 3, 5) -> Resize
x(2, 1) -> Conv 3x3 to 16 channels, LeakyRelu (gather form) -> ConvTranspose 3x2, strides (2, 3), dilation
(1, 2), output padding (1, 2), to 17 channels, Relu (phases) -> Conv 5x5/2 to 3 channels, Tanh (scatter
form) -> Resize x(1, 2) -> image (3, 7, 16); native_conv_golden.txt its image likewise, (3, 3, 7, 16).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from onnxgan.runtime.latent import latent

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from native_reference import make_conv_generator  # noqa: E402  (tests/, beside this folder)

MODEL, GOLDEN = HERE / "native_tiny.onnx", HERE / "native_tiny_golden.txt"
CONV_MODEL, CONV_GOLDEN = HERE / "native_conv.onnx", HERE / "native_conv_golden.txt"
LATENT, CLASSES, EMBED = 6, 3, 4


def fp16_weight(nodes: list, initializers: list, name: str, values: np.ndarray) -> str:
    """Stores values as an fp16 initializer followed by Cast(to=float); returns the float name."""
    initializers.append(numpy_helper.from_array(values.astype(np.float16), f"{name}.fp16"))
    nodes.append(helper.make_node("Cast", [f"{name}.fp16"], [name], to=TensorProto.FLOAT, name=f"cast_{name}"))
    return name


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes: list = []
    inits: list = []
    w = lambda *shape: (rng.standard_normal(shape) * 0.5).astype(np.float32)  # noqa: E731
    fp16_weight(nodes, inits, "embedding", w(CLASSES, EMBED))
    nodes.append(helper.make_node("Gather", ["embedding", "label"], ["emb"], axis=0, name="gather"))
    nodes.append(helper.make_node("Concat", ["z", "emb"], ["x0"], axis=1, name="concat"))
    fp16_weight(nodes, inits, "w1", w(16, LATENT + EMBED))  # Gemm transB=1: (out, in)
    fp16_weight(nodes, inits, "b1", w(16))
    nodes.append(helper.make_node("Gemm", ["x0", "w1", "b1"], ["h1"], transB=1, name="gemm1"))
    nodes.append(helper.make_node("LeakyRelu", ["h1"], ["a1"], alpha=0.2, name="leaky1"))
    fp16_weight(nodes, inits, "w2", w(16, 13))  # MatMul: (in, out)
    fp16_weight(nodes, inits, "b2", w(13))
    nodes.append(helper.make_node("MatMul", ["a1", "w2"], ["h2"], name="matmul2"))
    nodes.append(helper.make_node("Add", ["h2", "b2"], ["g2"], name="add2"))
    nodes.append(helper.make_node("Relu", ["g2"], ["a2"], name="relu2"))
    fp16_weight(nodes, inits, "w3", w(12, 13))
    fp16_weight(nodes, inits, "b3", w(12))
    nodes.append(helper.make_node("Gemm", ["a2", "w3", "b3"], ["h3"], transB=1, name="gemm3"))
    nodes.append(helper.make_node("Tanh", ["h3"], ["a3"], name="tanh3"))
    inits.append(numpy_helper.from_array(np.array([-1, 1, 3, 4], dtype=np.int64), "shape"))
    nodes.append(helper.make_node("Reshape", ["a3", "shape"], ["image"], name="reshape"))
    graph = helper.make_graph(
        nodes, "native_tiny",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 3, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="native_make_models")
    metadata = {"onnxgan_format": 1, "model": "mlp-conditional", "latent_dim": LATENT, "image_shape": [1, 3, 4],
                "value_range": [-1, 1], "num_classes": CLASSES, "class_names": ["a", "b", "c"],
                "training_step": 0, "package_version": "0.1.0", "latent_rng": "splitmix64-boxmuller-v1",
                "weights_dtype": "float16"}
    helper.set_model_props(model, {key: json.dumps(value) for key, value in metadata.items()})
    onnx.checker.check_model(model)
    return model


def build_conv() -> onnx.ModelProto:
    return make_conv_generator(LATENT, (3, 3, 5), [
        {"op": "Resize", "scales": (2, 1)},
        {"op": "Conv", "out": 16, "kernel": (3, 3), "pads": (1, 1, 1, 1), "act": "LeakyRelu"},
        {"op": "ConvTranspose", "out": 17, "kernel": (3, 2), "strides": (2, 3), "dilations": (1, 2),
         "pads": (1, 0, 0, 1), "output_padding": (1, 2), "act": "Relu"},
        {"op": "Conv", "out": 3, "kernel": (5, 5), "strides": (2, 2), "pads": (2, 2, 2, 2), "act": "Tanh"},
        {"op": "Resize", "scales": (1, 2)}], num_classes=CLASSES, seed=21)


def main() -> None:
    for model, path, golden in [(build(), MODEL, GOLDEN), (build_conv(), CONV_MODEL, CONV_GOLDEN)]:
        data = model.SerializeToString()
        path.write_bytes(data)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        image = session.run(["image"], {"z": latent(3, LATENT, 7), "label": np.arange(3, dtype=np.int64)})[0]
        golden.write_text("".join(f"{v:.9g}\n" for v in image.reshape(-1)))
        print(f"wrote {path} ({len(data)} bytes) and {golden} ({image.size} values, {image.shape})")


if __name__ == "__main__":
    main()
