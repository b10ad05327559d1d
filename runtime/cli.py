"""``gan-sample``: model.onnx -> a PNG grid, an .npz, a folder of PNGs, or an interpolation strip/GIF;
with --shard-size, a resumable job of numbered shards (runtime/shards.py).

Every output appears whole or not at all: files go through ``atomic_write``; a folder is filled under
a temporary name beside it and renamed into place (onto a missing or empty folder only).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import click
from click.core import ParameterSource
import numpy as np
from PIL import Image

from onnxgan.cli import CONTEXT_SETTINGS, Command
from onnxgan.errors import UserError, printable
from onnxgan.files import atomic_write, new_folder, refuse_overwriting_inputs
from onnxgan.images import grid, save_png

from . import pretrained
from .backends import BACKENDS, DEVICES
from .latent import MIN_TRUNCATION
from .sampler import Sampler
from .shards import FORMATS, run_job, worker_threads

SCALE = 2  # grids and strips show each pixel as SCALE x SCALE
GIF_SIDE = 256  # GIF frames are upscaled by a whole factor to at least this many pixels a side (28 -> 280)
FRAME_MS = 120  # GIF frame duration


@click.command("gan-sample", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.argument("model", metavar="MODEL.onnx", required=False)
@pretrained.option("Sample")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="OUT.png: a grid; OUT.npz: images, labels and z; OUT/ (or no suffix; new or empty): one PNG "
                   "per image; "
                   "with --interpolate: OUT.png (a strip) or OUT.gif.")
@click.option("-n", "count", type=click.IntRange(min=1), default=64, show_default=True, help="How many images.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
              help="The same seed gives the same z on every backend and machine (images: docs/native.md).")
@click.option("--label", default=None, help="Class (number or name) for every image of a conditional model "
                                             "[default: cycle through the classes; --interpolate walks within "
                                             "one class, 0 unless --label picks another].")
@click.option("--interpolate", nargs=2, type=click.IntRange(0, 2**64 - 1), default=None, metavar="SEED_A SEED_B",
              help="Walk from z(SEED_A) to z(SEED_B) along a great circle (slerp) instead of sampling.")
@click.option("--steps", type=click.IntRange(min=2), default=8, show_default=True, help="Frames of --interpolate.")
@click.option("--truncation", type=click.FloatRange(min=MIN_TRUNCATION), default=None, metavar="T",
              help=f"Redraw every latent value with |z| > T (T >= {MIN_TRUNCATION}; smaller: more typical, less varied "
                   "images), by a rule every backend follows bit for bit (runtime/latent.py) [default: off].")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads (of each worker) [default: all cores, shared out among --workers].")
@click.option("--shard-size", type=click.IntRange(min=1), default=None, metavar="S",
              help="Write OUT/ as numbered shards of S images plus index.json; a rerun finishes an interrupted "
                   "job (docs/sharding.md).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes writing the shards of a --shard-size job.")
@click.option("--format", "shard_format", type=click.Choice(FORMATS), default="npz", show_default=True,
              help="Shards of a --shard-size job: npz (images, labels) or png (a folder of PNGs each).")
@click.pass_context
def main(ctx: click.Context, model: str | None, pretrained_name: str | None, output: str, count: int, seed: int,
         label: str | None, interpolate: tuple[int, int] | None, steps: int, backend: str, device: str,
         threads: int | None, shard_size: int | None, workers: int, shard_format: str, truncation: float | None) -> None:
    """Draw images from a generator exported by gan-export.

    \b
    Examples:
      gan-sample model.onnx -n 64 -o samples.png
      gan-sample --pretrained mnist -n 64 -o digits.png
      gan-sample model.onnx -n 1000 --seed 7 -o samples.npz
      gan-sample model.onnx -n 16 -o digits/
      gan-sample model.onnx --interpolate 1 2 --steps 16 -o walk.gif
      gan-sample model.onnx -n 1000000 --shard-size 10000 --workers 2 -o shards/
    """
    model = pretrained.model_or_pretrained(model, pretrained_name)
    if interpolate is not None:
        for name, flag in (("count", "-n"), ("seed", "--seed"), ("shard_size", "--shard-size")):
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
                raise UserError(f"{flag} does not apply to --interpolate (its seeds are SEED_A SEED_B, its "
                                "length --steps)")
    if shard_size is None:
        for name, flag in (("workers", "--workers"), ("shard_format", "--format")):
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
                raise UserError(f"{flag} applies to sharded jobs only; add --shard-size")
    kind = _output_kind(output, interpolating=interpolate is not None)
    refuse_overwriting_inputs(output, model)
    if shard_size is not None and kind != "folder":
        raise UserError(f"-o {output}: a --shard-size job writes a folder; give one (e.g. -o shards/)")
    sampler = Sampler(model, backend=backend, device=device,
                      threads=threads if shard_size is None else worker_threads(workers, threads))
    label_value = _label(sampler, label)
    if shard_size is not None:
        click.echo(run_job(sampler, Path(output), count, seed, label_value, shard_size, shard_format, workers,
                           truncation))
        return
    if interpolate is not None:
        pixels = sampler.interpolate(*interpolate, steps, label=label_value, truncation=truncation)
        what = f"{steps} steps from seed {interpolate[0]} to {interpolate[1]}"
        labels = z = None
    else:
        labels = sampler.labels(count, label_value)
        z = sampler.latent(count, seed, truncation)  # (n, latent_dim)
        pixels = sampler.pixels(z, labels)
        what = f"{count} images, seed {seed}"
    if kind == "png":
        save_png(grid(pixels, columns=steps if interpolate else None, scale=SCALE), output)
    elif kind == "gif":
        _write_gif(pixels, output)
    elif kind == "npz":
        _write_npz(output, images=pixels, labels=np.empty(0, np.int64) if labels is None else labels, z=z)
    else:
        _write_folder(pixels, Path(output))
    info = sampler.info()
    click.echo(f"{output}: {what} ({info['backend']}, {info['provider']})")


def _output_kind(output: str, interpolating: bool) -> str:
    """'png', 'gif', 'npz' or 'folder', decided before any work so a mistake costs nothing."""
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return "folder"
    kinds = {".png": "png", ".npz": "npz"} if not interpolating else {".png": "png", ".gif": "gif"}
    kind = kinds.get(path.suffix.lower())
    if kind is None:
        choices = "with --interpolate use OUT.png, OUT.gif" if interpolating else "use OUT.png, OUT.npz"
        raise UserError(f"-o {output}: cannot write {path.suffix!r} files; {choices} or a folder")
    return kind


def _label(sampler: Sampler, label: str | None) -> int | None:
    """--label as a class index: a number, or one of the model's class names."""
    if label is None:
        return None
    if sampler.model_info.num_classes == 0:
        raise UserError(f"--label {printable(label)}: this model is unconditional; drop --label")
    try:
        return sampler.class_index(label)
    except UserError as e:
        raise UserError(f"--{e}") from None


def _write_npz(output: str, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_write(output) as f:
        f.write(buffer.getvalue())


def _write_gif(pixels: np.ndarray, output: str) -> None:
    """Frames (T, H, W[, C]) -> an endlessly looping GIF, each pixel a square of the smallest whole
    factor that makes the frame at least GIF_SIDE pixels a side (crisp, never blurred)."""
    scale = max(SCALE, -(-GIF_SIDE // min(pixels.shape[1:3])))
    frames = [Image.fromarray(frame.repeat(scale, axis=0).repeat(scale, axis=1)) for frame in pixels]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0)
    with atomic_write(output) as f:
        f.write(buffer.getvalue())


def _write_folder(pixels: np.ndarray, folder: Path) -> None:
    """One PNG per image (000000.png, ...) in a new or empty ``folder``, all or nothing."""
    with new_folder(folder) as staging:
        for index, image in enumerate(pixels):
            Image.fromarray(image).save(staging / f"{index:06d}.png")
