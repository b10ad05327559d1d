"""``gan-export``: a run directory or checkpoint -> a checked, self-describing model.onnx (atomic write)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from onnxgan.cli import CONTEXT_SETTINGS, Command
from onnxgan.errors import UserError
from onnxgan.files import atomic_write, refuse_overwriting_inputs
from onnxgan.train.checkpoint import newest_run, resolve_checkpoint

from .onnx_export import export_checkpoint


@click.command("gan-export", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.argument("source", required=False, metavar="[RUN_DIR|CHECKPOINT]")
@click.option("-o", "--output", default=None, metavar="MODEL.onnx", help="Where to write the model.")
@click.option("--fp16", is_flag=True, help="Store the weights in half precision (half the file; checked to 2e-3).")
def main(source: str | None, output: str | None, fp16: bool) -> None:
    """Export a trained generator to ONNX, after checking onnxruntime against PyTorch.

    \b
    Examples:
      gan-export runs/mlp-20250101-120000 -o model.onnx
      gan-export runs/bn/checkpoints/step_0002000.pt -o bn.onnx --fp16
      gan-export model.onnx                # the newest run under ./runs
    """
    if output is None:
        if source is None or not source.endswith(".onnx"):
            raise UserError("name the output: gan-export [RUN_DIR|CHECKPOINT] -o model.onnx")
        source, output = None, source
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        raise UserError(f"-o {output}: is a folder; give a file name such as model.onnx")
    if source is None:
        run = newest_run("runs")
        click.echo(f"exporting the newest run: {run}", err=True)
        source = str(run)
    checkpoint = resolve_checkpoint(source)
    refuse_overwriting_inputs(output, checkpoint)
    exported = export_checkpoint(checkpoint, fp16=fp16)
    with atomic_write(output) as f:
        f.write(exported.data)
    info = exported.info
    click.echo(f"{checkpoint} ({info.model}, step {info.training_step}, {exported.weights} weights) -> {output}: "
               f"{len(exported.data) / 1e6:.2f} MB {info.weights_dtype}, max abs error vs PyTorch "
               f"{exported.max_error:.2g} (tolerance {exported.tolerance:g})")
    click.echo(f"next: gan-sample {output} -n 64 -o samples.png")
