"""Checkpoint -> model.onnx bytes that follow docs/onnx-contract.md, checked against PyTorch first.

Steps: rebuild G from the checkpoint alone (G_ema weights when present), eval mode, fold each
BatchNorm into the Linear before it, export with the legacy exporter (opset 17, IR 8), add the metadata,
run onnx.checker, and compare onnxruntime (through the runtime's own Sampler) with the unfolded PyTorch G
on a fixed batch. Then the weights' dtype: the same graph with its weights stored as fp16 behind Casts
is kept when its images meet the pixel criterion (runtime/pixels.py) against the float32 file's on
CRITERION_SAMPLES samples ("auto", the default), or either dtype when asked for.
"""
from __future__ import annotations

import copy
import dataclasses
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
from onnxgan.runtime.pixels import PixelAgreement, measure_agreement
from onnxgan.runtime.sampler import Sampler
from onnxgan.train.checkpoint import load_checkpoint
from onnxgan.train.config import ModelConfig
from onnxgan.train.models import build_models

OPSET = 17
IR_VERSION = 8  # what the legacy exporter writes; onnxruntime 1.18+ loads it
# The float32 file passes when onnxruntime's images are within max(TOLERANCE, ROUNDING_SLACK x PyTorch's
# own float32 error) of G run in float64 (images in [-1, 1]). A fixed 1e-5 refused trained Gs whose
# float32 rounding alone is larger: for an unconditional mlp-bn G at step 7000, PyTorch's float32 images were
# 7e-6 from float64 and onnxruntime's 9e-6; for Gs with large weights and small BatchNorm variances, both
# reach 3e-5 to 3e-3 while onnxruntime stays within 1.6x of PyTorch. A wrong graph (a bias off by 0.1)
# is off by far more than either.
TOLERANCE = 1e-5
ROUNDING_SLACK = 4
CHECK_BATCH, CHECK_SEED = 16, 2024
WEIGHTS_DTYPES = ("auto", "float32", "float16")  # "auto": float16 when the pixel criterion holds
# 10,000 images of z from CHECK_SEED (7.8 M pixels at 28x28, so 0.1% is 7,840 pixels): about a second of
# onnxruntime for the seed MLP on two cores, in batches of 1000 (a 3x64x64 conv model's pixels fit too).
CRITERION_SAMPLES = 10_000


@dataclass(frozen=True)
class Exported:
    """A checked model.onnx, not yet written."""

    data: bytes
    info: ModelInfo  # info.weights_dtype: "float32" or "float16", as stored in data
    weights: str  # "G" or "G_ema"
    max_error: float  # of the float32 file against G in float64 (<= tolerance)
    tolerance: float  # max(TOLERANCE, ROUNDING_SLACK x PyTorch float32's own error)
    agreement: PixelAgreement | None  # the float16 file's pixels against the float32 one's (None: not measured)


def export_checkpoint(checkpoint: Path, weights_dtype: str = "auto") -> Exported:
    """The checked model.onnx bytes for ``checkpoint``; ``CheckFailed`` when onnxruntime disagrees."""
    state = load_checkpoint(checkpoint)
    config = ModelConfig.from_dict(state["model_config"])
    weights = "G_ema" if "G_ema" in state else "G"
    generator = build_models(config)[0]
    try:
        generator.load_state_dict(state[weights])
    except RuntimeError as e:
        raise UserError(f"{checkpoint}: {weights} does not fit its model config ({first_line(e)})") from None
    return export_generator(generator, config, int(state["step"]), weights, weights_dtype)


def export_generator(generator: nn.Module, config: ModelConfig, step: int, weights: str = "G",
                     weights_dtype: str = "auto") -> Exported:
    """The checked model.onnx bytes for a generator built from ``config`` (put in eval mode here).

    weights_dtype: "float32"; "float16" (written whatever the pixels say, unless they are NaN/Inf); or
    "auto": float16 when its images meet the pixel criterion against the float32 file's, else float32.
    """
    if weights_dtype not in WEIGHTS_DTYPES:
        raise UserError(f"weights_dtype must be one of {', '.join(WEIGHTS_DTYPES)}, got {weights_dtype!r}")
    generator.eval()
    info = ModelInfo(model=config.name, latent_dim=config.latent_dim, image_shape=tuple(config.image_shape),
                     num_classes=config.num_classes, class_names=tuple(config.class_names),
                     training_step=step, package_version=__version__, weights_dtype="float32")
    model = to_onnx(fold_batchnorm(generator), info)
    full = checked_bytes(model, info)
    full_sampler = Sampler(full, backend="onnxruntime", device="cpu")
    max_error, torch_error = compare_with_torch(generator, full_sampler)
    tolerance = max(TOLERANCE, ROUNDING_SLACK * torch_error)
    if not max_error <= tolerance:  # also refuses NaN
        raise CheckFailed(f"onnxruntime and PyTorch disagree: max abs error {max_error:.3g} against G in float64 > "
                          f"tolerance {tolerance:.3g} (PyTorch float32's error {torch_error:.3g}; float32 weights, "
                          f"batch of {CHECK_BATCH}); nothing was written")
    if weights_dtype == "float32":
        return Exported(full, info, weights, max_error, tolerance, None)
    store_weights_as_fp16(model)
    half_info = dataclasses.replace(info, weights_dtype="float16")
    half = checked_bytes(model, half_info)
    try:
        agreement = measure_agreement(full_sampler, Sampler(half, backend="onnxruntime", device="cpu"),
                                      CRITERION_SAMPLES, CHECK_SEED)
    except CheckFailed:  # a weight beyond float16's range became Inf, and the images NaN
        if weights_dtype == "float16":
            raise CheckFailed("float16 weights make this model produce NaN/Inf (a weight beyond float16's "
                              "range, 65504); export it with float32 weights; nothing was written") from None
        return Exported(full, info, weights, max_error, tolerance, None)
    if weights_dtype == "auto" and not agreement.passes:
        return Exported(full, info, weights, max_error, tolerance, agreement)
    return Exported(half, half_info, weights, max_error, tolerance, agreement)


def checked_bytes(model: onnx.ModelProto, info: ModelInfo) -> bytes:
    """``model`` with ``info`` as its metadata, passed by onnx.checker, serialised."""
    helper.set_model_props(model, info.to_metadata())
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise CheckFailed(f"onnx.checker rejects the exported graph: {first_line(e)}") from None
    return model.SerializeToString()


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
        with np.errstate(over="ignore"):  # beyond 65504 becomes Inf: export_generator sees the NaN images
            half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), f"{name}.fp16")
        graph.initializer[index].CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}.cast"))
    nodes = casts + list(graph.node)  # Casts first keeps the node list topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)


def compare_with_torch(generator: nn.Module, sampler: Sampler) -> tuple[float, float]:
    """(max abs error of ``sampler`` (onnxruntime on the CPU), of the unfolded PyTorch G in float32), each
    against the unfolded G in float64 on a fixed batch: the second is how far float32 rounding alone goes."""
    z, labels = sampler.latent(CHECK_BATCH, CHECK_SEED), sampler.labels(CHECK_BATCH, None)  # (N, latent_dim), (N,)
    ours = sampler.generate(z, labels)  # (N, C, H, W)
    label_args = () if labels is None else (torch.from_numpy(labels),)
    with torch.no_grad():
        theirs = generator(torch.from_numpy(z), *label_args).numpy()
        exact = copy.deepcopy(generator).double()(torch.from_numpy(z).double(), *label_args).numpy()
    return float(np.max(np.abs(ours - exact))), float(np.max(np.abs(theirs - exact)))
