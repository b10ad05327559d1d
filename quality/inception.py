"""pytorch-fid's Inception-v3 (the network of published FID figures) run on onnxruntime, without torch.

``InceptionFeatures(weights).features(images)`` gives the 2048-d pool3 features of uint8 images, as
pytorch-fid computes them: pixels / 255, grey tiled to 3 channels (its loader's ``convert('RGB')``),
a bilinear resize to 299x299 (``F.interpolate(align_corners=False)``, no antialiasing), then 2x - 1,
then the network up to the final average pool.

The network is built here as an ONNX graph from the weights file (pytorch-fid's
pt_inception-2015-12-05-6726825d.pth or any state dict of the same names and shapes, read by pth.py
without torch), in memory each time (about a second): there is no second file to keep in step with
the weights. Each BasicConv2d (conv without bias, BatchNorm eps 1e-3, ReLU) becomes one Conv with the
BatchNorm folded into its weights and bias, then a Relu. The block layout is torchvision's
Inception3 with pytorch-fid's patches: Mixed_5b-5d (FIDInceptionA), 6b-6e (FIDInceptionC) and 7b
(FIDInceptionE_1) average-pool without counting the padding, as TensorFlow did; 7c (FIDInceptionE_2)
max-pools instead. The resize runs in numpy (two small interpolation matrices per image size), so its
arithmetic is written down here rather than left to an operator's coordinate conventions.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from onnxgan.errors import UserError
from onnxgan.extras import onnxruntime

from .onnx_writer import GraphWriter
from .pth import PthError, load_state_dict

IMAGE_SIDE = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3  # torchvision's BasicConv2d
INPUT, FEATURES = "pixels", "features"
BATCH = 32  # images per onnxruntime call: the largest activation is 64 x 147 x 147 floats (5.5 MB) an image


class _Network:
    """Emits the graph block by block; every conv's weights are checked against the shape it must have."""

    def __init__(self, weights: dict[str, np.ndarray], source: Path):
        self.weights, self.source = weights, source
        self.graph = GraphWriter("pytorch-fid inception-v3 pool3")

    def _tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        array = self.weights.get(name)
        if array is None:
            raise PthError(self.source, f"no tensor {name}: not pytorch-fid's Inception weights "
                                        "(pt_inception-2015-12-05-6726825d.pth)")
        if array.shape != shape or array.dtype.kind != "f":
            raise PthError(self.source, f"{name} is {array.dtype} {array.shape}, pytorch-fid's Inception has "
                                        f"float {shape}")
        return array.astype(np.float64)

    def conv(self, name: str, x: str, channels: tuple[int, int], kernel: int | tuple[int, int], stride: int = 1,
             pad: int | tuple[int, int] = 0) -> str:
        """BasicConv2d ``name``: conv (in, out) channels, BatchNorm folded in, ReLU."""
        (c_in, c_out), (kh, kw) = channels, kernel if isinstance(kernel, tuple) else (kernel, kernel)
        ph, pw = pad if isinstance(pad, tuple) else (pad, pad)
        weight = self._tensor(f"{name}.conv.weight", (c_out, c_in, kh, kw))
        gamma, beta, mean, var = (self._tensor(f"{name}.bn.{key}", (c_out,))
                                  for key in ("weight", "bias", "running_mean", "running_var"))
        if np.any(var < 0):
            raise PthError(self.source, f"{name}.bn.running_var has negative entries")
        scale = gamma / np.sqrt(var + BN_EPS)  # (out,): y = scale * (conv - mean) + beta
        w = self.graph.initializer(f"{name}.w", weight * scale[:, None, None, None])
        b = self.graph.initializer(f"{name}.b", beta - mean * scale)
        y = self.graph.node("Conv", [x, w, b], kernel_shape=(kh, kw), strides=(stride, stride), pads=(ph, pw, ph, pw))
        return self.graph.node("Relu", [y])

    def max_pool(self, x: str, stride: int, pad: int = 0) -> str:
        return self.graph.node("MaxPool", [x], kernel_shape=(3, 3), strides=(stride, stride), pads=(pad,) * 4)

    def avg_pool(self, x: str) -> str:
        """3x3, stride 1, padding 1, the padding left out of each mean (pytorch-fid's patch)."""
        return self.graph.node("AveragePool", [x], kernel_shape=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1),
                               count_include_pad=0)

    def concat(self, *branches: str) -> str:
        return self.graph.node("Concat", list(branches), axis=1)

    # ---- torchvision's blocks, pytorch-fid's pooling ---------------------------------------------

    def block_a(self, name: str, x: str, c_in: int, pool_features: int) -> str:
        b1 = self.conv(f"{name}.branch1x1", x, (c_in, 64), 1)
        b5 = self.conv(f"{name}.branch5x5_2", self.conv(f"{name}.branch5x5_1", x, (c_in, 48), 1), (48, 64), 5, pad=2)
        b3 = self.conv(f"{name}.branch3x3dbl_1", x, (c_in, 64), 1)
        b3 = self.conv(f"{name}.branch3x3dbl_2", b3, (64, 96), 3, pad=1)
        b3 = self.conv(f"{name}.branch3x3dbl_3", b3, (96, 96), 3, pad=1)
        pool = self.conv(f"{name}.branch_pool", self.avg_pool(x), (c_in, pool_features), 1)
        return self.concat(b1, b5, b3, pool)  # 64 + 64 + 96 + pool_features

    def block_b(self, name: str, x: str, c_in: int) -> str:
        b3 = self.conv(f"{name}.branch3x3", x, (c_in, 384), 3, stride=2)
        dbl = self.conv(f"{name}.branch3x3dbl_1", x, (c_in, 64), 1)
        dbl = self.conv(f"{name}.branch3x3dbl_2", dbl, (64, 96), 3, pad=1)
        dbl = self.conv(f"{name}.branch3x3dbl_3", dbl, (96, 96), 3, stride=2)
        return self.concat(b3, dbl, self.max_pool(x, 2))  # 384 + 96 + c_in

    def block_c(self, name: str, x: str, c_in: int, c7: int) -> str:
        b1 = self.conv(f"{name}.branch1x1", x, (c_in, 192), 1)
        b7 = self.conv(f"{name}.branch7x7_1", x, (c_in, c7), 1)
        b7 = self.conv(f"{name}.branch7x7_2", b7, (c7, c7), (1, 7), pad=(0, 3))
        b7 = self.conv(f"{name}.branch7x7_3", b7, (c7, 192), (7, 1), pad=(3, 0))
        dbl = self.conv(f"{name}.branch7x7dbl_1", x, (c_in, c7), 1)
        for i, (c_out, kernel, pad) in enumerate([(c7, (7, 1), (3, 0)), (c7, (1, 7), (0, 3)), (c7, (7, 1), (3, 0)),
                                                  (192, (1, 7), (0, 3))], start=2):
            dbl = self.conv(f"{name}.branch7x7dbl_{i}", dbl, (c7, c_out), kernel, pad=pad)
        pool = self.conv(f"{name}.branch_pool", self.avg_pool(x), (c_in, 192), 1)
        return self.concat(b1, b7, dbl, pool)  # 4 x 192

    def block_d(self, name: str, x: str, c_in: int) -> str:
        b3 = self.conv(f"{name}.branch3x3_2", self.conv(f"{name}.branch3x3_1", x, (c_in, 192), 1), (192, 320), 3,
                       stride=2)
        b7 = self.conv(f"{name}.branch7x7x3_1", x, (c_in, 192), 1)
        b7 = self.conv(f"{name}.branch7x7x3_2", b7, (192, 192), (1, 7), pad=(0, 3))
        b7 = self.conv(f"{name}.branch7x7x3_3", b7, (192, 192), (7, 1), pad=(3, 0))
        b7 = self.conv(f"{name}.branch7x7x3_4", b7, (192, 192), 3, stride=2)
        return self.concat(b3, b7, self.max_pool(x, 2))  # 320 + 192 + c_in

    def block_e(self, name: str, x: str, c_in: int, max_pool: bool) -> str:
        b1 = self.conv(f"{name}.branch1x1", x, (c_in, 320), 1)
        b3 = self.conv(f"{name}.branch3x3_1", x, (c_in, 384), 1)
        b3 = self.concat(self.conv(f"{name}.branch3x3_2a", b3, (384, 384), (1, 3), pad=(0, 1)),
                         self.conv(f"{name}.branch3x3_2b", b3, (384, 384), (3, 1), pad=(1, 0)))
        dbl = self.conv(f"{name}.branch3x3dbl_1", x, (c_in, 448), 1)
        dbl = self.conv(f"{name}.branch3x3dbl_2", dbl, (448, 384), 3, pad=1)
        dbl = self.concat(self.conv(f"{name}.branch3x3dbl_3a", dbl, (384, 384), (1, 3), pad=(0, 1)),
                          self.conv(f"{name}.branch3x3dbl_3b", dbl, (384, 384), (3, 1), pad=(1, 0)))
        pooled = self.max_pool(x, 1, pad=1) if max_pool else self.avg_pool(x)
        pool = self.conv(f"{name}.branch_pool", pooled, (c_in, 192), 1)
        return self.concat(b1, b3, dbl, pool)  # 320 + 768 + 768 + 192 = 2048

    def model(self) -> bytes:
        """The whole graph: pixels (N, 3, 299, 299) in [-1, 1] -> features (N, 2048)."""
        x = self.conv("Conv2d_1a_3x3", INPUT, (3, 32), 3, stride=2)  # (N, 32, 149, 149)
        x = self.conv("Conv2d_2a_3x3", x, (32, 32), 3)  # 147
        x = self.max_pool(self.conv("Conv2d_2b_3x3", x, (32, 64), 3, pad=1), 2)  # (N, 64, 73, 73)
        x = self.conv("Conv2d_3b_1x1", x, (64, 80), 1)
        x = self.max_pool(self.conv("Conv2d_4a_3x3", x, (80, 192), 3), 2)  # (N, 192, 35, 35)
        for name, c_in, pool_features in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
            x = self.block_a(name, x, c_in, pool_features)
        x = self.block_b("Mixed_6a", x, 288)  # (N, 768, 17, 17)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = self.block_c(name, x, 768, c7)
        x = self.block_d("Mixed_7a", x, 768)  # (N, 1280, 8, 8)
        x = self.block_e("Mixed_7b", x, 1280, max_pool=False)
        x = self.block_e("Mixed_7c", x, 2048, max_pool=True)  # (N, 2048, 8, 8)
        self.graph.node("Flatten", [self.graph.node("GlobalAveragePool", [x])], output=FEATURES, axis=1)
        return self.graph.model({INPUT: ("N", 3, IMAGE_SIDE, IMAGE_SIDE)}, {FEATURES: ("N", FEATURE_DIM)},
                                producer="onnxgan")


def build_model(weights: dict[str, np.ndarray], source: Path) -> bytes:
    """The serialized ONNX model of pytorch-fid's network from its state dict (``source`` names it in errors)."""
    return _Network(weights, source).model()


@functools.cache
def _resize_matrix(size_in: int, size_out: int = IMAGE_SIDE) -> np.ndarray:
    """float32 (size_out, size_in): one axis of torch's bilinear resize with align_corners=False.

    Output pixel i samples the input at (i + 0.5) * size_in / size_out - 0.5, clamped to >= 0; the two
    neighbours floor and floor + 1 (clamped to the last pixel) get weights 1 - frac and frac."""
    source = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = source - low
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.arange(size_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(size_out), high), frac)
    return matrix.astype(np.float32)


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C), C 1 or 3 -> float32 (N, 3, 299, 299) in [-1, 1], the graph's input."""
    if images.ndim == 3:
        images = images[..., None]
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)  # (N, C, H, W) in [0, 1]
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)  # grey -> RGB, as Pillow's convert('RGB') in pytorch-fid's loader
    x = _resize_matrix(x.shape[2]) @ x @ _resize_matrix(x.shape[3]).T  # (N, 3, 299, 299)
    return x * np.float32(2.0) - np.float32(1.0)


class InceptionFeatures:
    """``features(images)`` -> pytorch-fid's pool3 features, from the weights file at ``path``."""

    def __init__(self, path: str | Path, threads: int | None = None):
        path = Path(path)
        model = build_model(load_state_dict(path), path)
        self.source = str(path)
        ort = onnxruntime("Inception features (FID on your own data: the network runs on onnxruntime)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def features(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W) or (N, H, W, C) with C 1 or 3 -> float32 (N, 2048)."""
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise UserError(f"Inception features take uint8 images (N, H, W) or (N, H, W, 1 or 3), got "
                            f"{images.dtype} {images.shape}")
        outputs = [self._session.run([FEATURES], {INPUT: to_input(images[i : i + BATCH])})[0]
                   for i in range(0, len(images), BATCH)]
        return np.concatenate(outputs) if outputs else np.empty((0, FEATURE_DIM), np.float32)
