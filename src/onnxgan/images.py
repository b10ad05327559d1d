"""Image helpers shared by training (sample grids) and sampling (gan-sample): numpy + Pillow only."""
from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image

from .files import atomic_write


TANH_RANGE = (-1.0, 1.0)  # the range of every onnxgan generator's tanh output


def to_uint8(images: np.ndarray, value_range: tuple[float, float] = TANH_RANGE) -> np.ndarray:
    """float in value_range (low, high), (N, C, H, W) -> uint8 (N, H, W) for C == 1 or (N, H, W, C) otherwise.

    uint8 = clip(rint((x - low) * 255 / (high - low)), 0, 255) in float32 (the scale from the float32
    bounds in float64), as the native library's ONNXGAN_OUTPUT_UINT8 computes it; NaN -> 0.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {images.shape}")
    low, high = np.float32(value_range[0]), np.float32(value_range[1])
    scale = np.float32(255.0 / (float(high) - float(low)))
    with np.errstate(invalid="ignore"):  # NaN pixels: rint and clip keep NaN, nan_to_num makes it 0
        pixels = np.nan_to_num(np.clip(np.rint((images.astype(np.float32) - low) * scale), 0, 255)).astype(np.uint8)
    pixels = pixels.transpose(0, 2, 3, 1)  # (N, H, W, C)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def grid(pixels: np.ndarray, columns: int | None = None, scale: int = 2, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (N, H, W) or (N, H, W, C) into one picture, each upscaled ``scale`` times.

    Columns default to a near-square layout (8 for 64 images); the padding is black.
    """
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    n, h, w, c = pixels.shape
    if n == 0:
        raise ValueError("cannot draw a grid of zero images")
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    big = pixels.repeat(scale, axis=1).repeat(scale, axis=2)  # (N, H*s, W*s, C)
    cell_h, cell_w = h * scale + pad, w * scale + pad
    canvas = np.zeros((rows * cell_h + pad, columns * cell_w + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        y, x = pad + r * cell_h, pad + col * cell_w
        canvas[y : y + h * scale, x : x + w * scale] = big[i]
    return canvas[..., 0] if c == 1 else canvas


def save_png(picture: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
