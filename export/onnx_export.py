"""Checkpoint -> model.onnx bytes that follow docs/onnx-contract.md, checked against PyTorch first.

Steps: rebuild G from the checkpoint alone (G_ema weights when present), eval mode, fold each
BatchNorm into the Linear before it, export with the legacy exporter (opset 17, IR 8), optionally store
the weights as fp16 behind Casts, add the metadata, run onnx.checker, and compare onnxruntime (through
the runtime's own Sampler) with the unfolded PyTorch G on a fixed batch.
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from onnxgan import __version__
from onnxgan.errors import CheckFailed, UserError, first_line
from onnxgan.runtime.contract import INPUT_LABEL, INPUT_Z, OUTPUT_IMAGE, ModelInfo
from onnxgan.runtime.latent import latent
from onnxgan.runtime.sampler import Sampler
from onnxgan.train.checkpoint import load_checkpoint
from onnxgan.train.config import ModelConfig
from onnxgan.train.models import build_models

OPSET = 17
IR_VERSION = 8  # what the legacy exporter writes; onnxruntime 1.18+ loads it
TOLERANCE = {"float32": 1e-5, "float16": 2e-3}  # max abs error, onnxruntime vs PyTorch, images in [-1, 1]
CHECK_BATCH, CHECK_SEED = 16, 2024


@dataclass(frozen=True)
class Exported:
    """A checked model.onnx, not yet written."""

    data: bytes
    info: ModelInfo
    weights: str  # "G" or "G_ema"
    max_error: float
    tolerance: float


def export_checkpoint(checkpoint: Path, fp16: bool = False) -> Exported:
    """The checked model.onnx bytes for ``checkpoint``; ``CheckFailed`` when onnxruntime disagrees."""
    state = load_checkpoint(checkpoint)
    config = ModelConfig.from_dict(state["model_config"])
    weights = "G_ema" if "G_ema" in state else "G"
    generator = build_models(config)[0]
    try:
        generator.load_state_dict(state[weights])
    except RuntimeError as e:
        raise UserError(f"{checkpoint}: {weights} does not fit its model config ({first_line(e)})") from None
    return export_generator(generator, config, int(state["step"]), weights, fp16)


def export_generator(generator: nn.Module, config: ModelConfig, step: int, weights: str = "G",
                     fp16: bool = False) -> Exported:
    """The checked model.onnx bytes for a generator built from ``config`` (put in eval mode here)."""
    generator.eval()
    dtype = "float16" if fp16 else "float32"
    info = ModelInfo(model=config.name, latent_dim=config.latent_dim, image_shape=tuple(config.image_shape),
                     num_classes=config.num_classes, class_names=tuple(config.class_names),
                     training_step=step, package_version=__version__, weights_dtype=dtype)
    model = to_onnx(fold_batchnorm(generator), info)
    if fp16:
        store_weights_as_fp16(model)
    helper.set_model_props(model, info.to_metadata())
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise CheckFailed(f"onnx.checker rejects the exported graph: {first_line(e)}") from None
    data = model.SerializeToString()
    max_error = compare_with_torch(generator, data, info)
    tolerance = TOLERANCE[dtype]
    if not max_error <= tolerance:  # also refuses NaN
        raise CheckFailed(f"onnxruntime and PyTorch disagree: max abs error {max_error:.3g} > tolerance "
                          f"{tolerance:g} ({dtype} weights, batch of {CHECK_BATCH}); nothing was written")
    return Exported(data, info, weights, max_error, tolerance)


def fold_batchnorm(generator: nn.Module) -> nn.Module:
    """An eval-mode copy of ``generator`` in which each BatchNorm is merged into the Linear or
    convolution before it (or, after an activation, into the Linear after it). Folding is exact in real
    arithmetic and done in float64:
    W' = W * s (per output channel), b' = (b - mean) * s + beta, with s = gamma / sqrt(var + eps).
    """
    folded = copy.deepcopy(generator).eval()
    for module in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        layers: list[nn.Module] = []
        pending: nn.Module | None = None  # a BatchNorm waiting for the Linear after it
        for layer in module:
            if isinstance(pending, _NORMS):  # a BatchNorm after an activation: into the Linear after it
                if not isinstance(layer, nn.Linear):
                    raise CheckFailed(f"cannot fold {type(pending).__name__} into {type(layer).__name__}: export "
                                      "supports BatchNorm right after Linear or convolutions, or right before Linear")
                layer, pending = _fold_into_next(pending, layer), None
            if isinstance(layer, _NORMS):
                if layers and isinstance(layers[-1], _FOLDABLE):
                    layers[-1] = _fold(layers[-1], layer)
                else:
                    pending = layer
            else:
                layers.append(layer)
        if pending is not None:
            raise CheckFailed(f"cannot fold the last {type(pending).__name__} of a block: nothing follows it")
        del module[:]
        module.extend(layers)
    return folded


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_FOLDABLE = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def _fold(layer: nn.Module, norm: nn.Module) -> nn.Module:
    """``layer`` followed by ``norm`` as one layer of the same kind, always with a bias."""
    scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)  # (out,)
    # The output-channel axis of the weight: Linear (out, in), Conv2d (out, in, kh, kw),
    # ConvTranspose2d (in, out, kh, kw).
    axis = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    if isinstance(layer, nn.ConvTranspose2d) and layer.groups != 1:
        raise CheckFailed("cannot fold BatchNorm into a grouped ConvTranspose2d")
    shape = [1] * layer.weight.dim()
    shape[axis] = -1
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(scale)
    fused = copy.deepcopy(layer)
    fused.weight = nn.Parameter((layer.weight.double() * scale.view(shape)).float())
    fused.bias = nn.Parameter(((bias - norm.running_mean.double()) * scale + norm.bias.double()).float())
    return fused


def _fold_into_next(norm: nn.Module, linear: nn.Linear) -> nn.Linear:
    """``norm`` (1-d) followed by ``linear`` as one Linear: with BN(x) = s x + t per input feature,
    W' = W diag(s) and b' = b + W t, where s = gamma / sqrt(var + eps) and t = beta - mean * s."""
    scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)  # (in,)
    shift = norm.bias.double() - norm.running_mean.double() * scale  # (in,)
    weight = linear.weight.double()  # (out, in)
    bias = linear.bias.double() if linear.bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
    fused = nn.Linear(linear.in_features, linear.out_features)
    fused.weight = nn.Parameter((weight * scale.view(1, -1)).float())
    fused.bias = nn.Parameter((bias + weight @ shift).float())
    return fused


def to_onnx(generator: nn.Module, info: ModelInfo) -> onnx.ModelProto:
    """The legacy TorchScript exporter's graph, named per the contract, with a fixed [N, C, H, W] output."""
    z = torch.from_numpy(latent(2, info.latent_dim, CHECK_SEED))  # (2, latent_dim): any batch traces alike
    inputs: tuple[torch.Tensor, ...] = (z,)
    names = [INPUT_Z]
    if info.num_classes:
        inputs += (torch.zeros(2, dtype=torch.int64),)
        names.append(INPUT_LABEL)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns that it is deprecated; it is the one that writes IR 8 and plain Gemm
        # nodes without onnxscript, and the tests pin its output.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(generator, inputs, buffer, dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=[OUTPUT_IMAGE], dynamic_axes={name: {0: "N"} for name in (*names, OUTPUT_IMAGE)})
    model = onnx.load_from_string(buffer.getvalue())
    model.ir_version = IR_VERSION
    image_dims = model.graph.output[0].type.tensor_type.shape.dim  # [N, C, H, W]
    for dim, side in zip(image_dims[1:], info.image_shape):
        dim.dim_value = side
    model.producer_name, model.producer_version = "onnxgan", __version__
    return model


def store_weights_as_fp16(model: onnx.ModelProto) -> None:
    """Store every float32 initializer as float16, each followed by a Cast back to float32.

    The graph still computes in float32 (readers need no fp16 kernels); only the file halves.
    """
    graph = model.graph
    casts = []
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type != TensorProto.FLOAT:
            continue
        name = tensor.name  # the Cast's output keeps the name every consumer reads
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), f"{name}.fp16")
        graph.initializer[index].CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}.cast"))
    nodes = casts + list(graph.node)  # Casts first keeps the node list topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)


def compare_with_torch(generator: nn.Module, data: bytes, info: ModelInfo) -> float:
    """Max abs difference between onnxruntime (CPU) and the unfolded PyTorch G on a fixed batch."""
    z = latent(CHECK_BATCH, info.latent_dim, CHECK_SEED)  # (CHECK_BATCH, latent_dim)
    labels = np.arange(CHECK_BATCH, dtype=np.int64) % info.num_classes if info.num_classes else None
    sampler = Sampler(data, backend="onnxruntime", device="cpu")
    ours = sampler.generate(z, labels)  # (N, C, H, W)
    with torch.no_grad():
        args = (torch.from_numpy(z),) if labels is None else (torch.from_numpy(z), torch.from_numpy(labels))
        theirs = generator(*args).numpy()
    return float(np.max(np.abs(ours - theirs)))
