"""The plain numpy reference of the native kernel (cpp/src): an interpreter, in float64, of every op the
native reader accepts, written from the ONNX operator definitions (a convolution as a sum over its kernel
taps, a transposed convolution as the scatter it is defined as), not from the kernel's lowering by
phases (cpp/src/conv.cpp); and a builder of random conv generator graphs for the tests to feed both.
Same signature as ``_native.Model.generate``: z float32 (N, latent_dim), labels int64 (N,) or None."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxgan.runtime.contract import ModelInfo


def conv2d(x, w, b, stride, pads, dilation):
    """ONNX Conv, group 1: x (N, C, H, W), w (O, C, kh, kw), b (O,), pads (h0, w0, h1, w1) -> (N, O, Ho, Wo)."""
    _, _, height, width = x.shape
    kh, kw = w.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    out_h = (height + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (width + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((len(x), w.shape[0], out_h, out_w)) + b[None, :, None, None]
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            patch = padded[:, :, y0:y0 + stride[0] * (out_h - 1) + 1:stride[0], x0:x0 + stride[1] * (out_w - 1) + 1:stride[1]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, ky, kx])
    return out


def conv_transpose2d(x, w, b, stride, pads, dilation, output_padding):
    """ONNX ConvTranspose, group 1: x (N, C, H, W), w (C, O, kh, kw): input pixel i adds w * x[i] at output
    i * stride - pad + k * dilation; -> (N, O, Ho, Wo)."""
    _, _, height, width = x.shape
    kh, kw = w.shape[2:]
    full_h = stride[0] * (height - 1) + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = stride[1] * (width - 1) + dilation[1] * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((len(x), w.shape[1], full_h, full_w))
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            full[:, :, y0:y0 + stride[0] * (height - 1) + 1:stride[0], x0:x0 + stride[1] * (width - 1) + 1:stride[1]] += \
                np.einsum("nchw,co->nohw", x, w[:, :, ky, kx])
    return full[:, :, pads[0]:full_h - pads[2], pads[1]:full_w - pads[3]] + b[None, :, None, None]


def reference_generate(model: onnx.ModelProto, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """The graph run in float64 (every op the native reader accepts) -> image (N, C, H, W)."""
    values = {t.name: numpy_helper.to_array(t).astype(np.float64 if t.data_type != TensorProto.INT64 else np.int64)
              for t in model.graph.initializer}
    values["z"] = z.astype(np.float64)
    if labels is not None:
        values["label"] = labels
    for node in model.graph.node:
        a = {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}
        x = [values[name] if name else None for name in node.input]
        op = node.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"])
        elif op in ("Cast", "Identity"):
            y = x[0].astype(np.float64)
        elif op == "Gemm":
            weight = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (x[0] @ weight) + (a.get("beta", 1.0) * x[2] if len(x) > 2 else 0)
        elif op == "MatMul":
            y = x[0] @ x[1]
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Relu":
            y = np.maximum(x[0], 0)
        elif op == "LeakyRelu":
            y = np.where(x[0] < 0, a.get("alpha", 0.01) * x[0], x[0])
        elif op == "Tanh":
            y = np.tanh(x[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-x[0]))
        elif op == "Reshape":
            y = x[0].reshape(len(x[0]), *[int(d) for d in x[1][1:]])
        elif op == "Flatten":
            y = x[0].reshape(len(x[0]), -1)
        elif op == "Gather":
            y = x[0][x[1]]
        elif op == "Concat":
            y = np.concatenate(x, axis=1)
        elif op in ("Conv", "ConvTranspose"):
            bias = x[2] if len(x) > 2 else np.zeros(x[1].shape[1 if op == "ConvTranspose" else 0])
            stride, pads, dilation = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]), a.get("dilations", [1, 1])
            y = conv2d(x[0], x[1], bias, stride, pads, dilation) if op == "Conv" else \
                conv_transpose2d(x[0], x[1], bias, stride, pads, dilation, a.get("output_padding", [0, 0]))
        elif op in ("Resize", "Upsample"):  # nearest, whole factors: out[o] = in[o // scale]
            scales = x[2] if op == "Resize" else x[1]
            y = x[0].repeat(int(scales[2]), axis=2).repeat(int(scales[3]), axis=3)
        else:
            raise AssertionError(f"the reference has no {op}")
        values[node.output[0]] = y
    return values["image"]


def make_conv_generator(latent_dim: int, start: tuple[int, int, int], steps: list[dict], num_classes: int = 0,
                        seed: int = 0) -> onnx.ModelProto:
    """A random fp32 conv generator: z (N, latent_dim) [+ Gather(label) Concat] -> Gemm -> Relu -> Reshape to
    ``start`` (C, H, W) -> ``steps`` -> image. A step is {"op": "Conv" | "ConvTranspose", "out": C_out, "kernel":
    (kh, kw), "strides", "pads", "dilations", "output_padding" (optional), "act": "Relu" | ... | None} or
    {"op": "Resize", "scales": (sh, sw)}. Weights scaled by 1/sqrt(fan-in), so activations stay near unit size."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def weight(name, shape, fan_in):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name))
        return name

    x, width = "z", latent_dim
    if num_classes:
        weight("embed", (num_classes, 4), 1)
        nodes += [helper.make_node("Gather", ["embed", "label"], ["e"]), helper.make_node("Concat", ["z", "e"], ["zc"], axis=1)]
        x, width = "zc", latent_dim + 4
    features = int(np.prod(start))
    nodes += [helper.make_node("Gemm", [x, weight("w0", (features, width), width), weight("b0", (features,), 10)], ["h0"], transB=1),
              helper.make_node("Relu", ["h0"], ["a0"])]
    inits.append(numpy_helper.from_array(np.array([-1, *start], dtype=np.int64), "start"))
    nodes.append(helper.make_node("Reshape", ["a0", "start"], ["x0"]))
    x, channels = "x0", start[0]
    for i, step in enumerate(steps):
        y = f"x{i + 1}"
        if step["op"] == "Resize":
            inits.append(numpy_helper.from_array(np.array([1, 1, *step["scales"]], dtype=np.float32), f"scales{i}"))
            nodes.append(helper.make_node("Resize", [x, "", f"scales{i}"], [y], mode="nearest",
                                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
        else:
            kh, kw = step["kernel"]
            shape = (step["out"], channels, kh, kw) if step["op"] == "Conv" else (channels, step["out"], kh, kw)
            attrs = {k: list(step[k]) for k in ("strides", "pads", "dilations", "output_padding") if k in step}
            pre = y if not step.get("act") else f"c{i}"
            nodes.append(helper.make_node(step["op"], [x, weight(f"k{i}", shape, channels * kh * kw), weight(f"kb{i}", (step["out"],), 10)],
                                          [pre], kernel_shape=[kh, kw], **attrs))
            if step.get("act"):
                nodes.append(helper.make_node(step["act"], [pre], [y], **({"alpha": 0.2} if step["act"] == "LeakyRelu" else {})))
            channels = step["out"]
        x = y
    nodes[-1].output[0] = "image"
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent_dim])]
    if num_classes:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
    # The image's shape from onnx's own shape inference (an independent account of the output sizes).
    graph = helper.make_graph(nodes, "conv", inputs, [helper.make_tensor_value_info("image", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim][1:]
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *dims]))
    info = ModelInfo(model="hand-conv", latent_dim=latent_dim, image_shape=tuple(dims), num_classes=num_classes,
                     class_names=tuple(str(c) for c in range(num_classes)), training_step=0, package_version="0")
    helper.set_model_props(model, info.to_metadata())
    return model
