"""``gan-export``: a run directory or checkpoint -> a checked, self-describing model.onnx (atomic write)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from onnxgan.cli import CONTEXT_SETTINGS, Command
from onnxgan.errors import UserError
from onnxgan.files import atomic_write, refuse_overwriting_inputs
from onnxgan.train.checkpoint import newest_run, resolve_checkpoint

from .onnx_export import CRITERION_SAMPLES, WEIGHTS_DTYPES, Exported, export_checkpoint


@click.command("gan-export", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.argument("source", required=False, metavar="[RUN_DIR|CHECKPOINT]")
@click.option("-o", "--output", default=None, metavar="MODEL.onnx", help="Where to write the model.")
@click.option("--weights", "weights_dtype", type=click.Choice(WEIGHTS_DTYPES), default="auto", show_default=True,
              help="How to store the weights: float16 (half the file; the native kernel keeps them half in memory) "
                   "when its images meet the pixel criterion against float32's, or the dtype given.")
def main(source: str | None, output: str | None, weights_dtype: str) -> None:
    """Export a trained generator to ONNX, after checking onnxruntime against PyTorch.

    \b
    Examples:
      gan-export runs/mlp-20250101-120000 -o model.onnx
      gan-export runs/bn/checkpoints/step_0002000.pt -o bn.onnx --weights float32
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
    exported = export_checkpoint(checkpoint, weights_dtype)
    with atomic_write(output) as f:
        f.write(exported.data)
    info = exported.info
    click.echo(f"{checkpoint} ({info.model}, step {info.training_step}, {exported.weights} weights) -> {output}: "
               f"{len(exported.data) / 1e6:.2f} MB {info.weights_dtype} ({dtype_reason(exported, weights_dtype)}), "
               f"max abs error of float32 vs PyTorch {exported.max_error:.2g} (tolerance {exported.tolerance:.2g})")
    click.echo(f"next: gan-sample {output} -n 64 -o samples.png")


def dtype_reason(exported: Exported, asked: str) -> str:
    """Why the weights have the dtype they have, for the output line."""
    if exported.agreement is None:
        return "as asked" if asked == "float32" else "auto: float16 weights would overflow to Inf"
    source = "as asked" if asked == "float16" else "auto"
    return f"{source}: float16 vs float32 on {CRITERION_SAMPLES:,} samples, {exported.agreement}"
