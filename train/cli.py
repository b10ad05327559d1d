"""``gan-train``: options -> (ModelConfig, TrainConfig) -> the loop, or a resumed run.

Resuming takes every setting from the checkpoint; only the schedule (--steps/--epochs, the
--*-every options) and --device may change, and asking to change anything else is an error rather
than a silent surprise.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from onnxgan.cli import CONTEXT_SETTINGS, Command, int_list
from onnxgan.errors import UserError

from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import DEVICES, MODEL_NAMES, ModelConfig, TrainConfig
from .data import load_dataset
from .loop import train

MODEL_OPTIONS = {"model": "name", "latent_dim": "latent_dim", "g_hidden": "g_hidden", "d_hidden": "d_hidden",
                 "cond": "num_classes"}
TRAIN_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig))
CHANGEABLE_ON_RESUME = {"steps", "epochs", "device", "log_every", "sample_every", "ckpt_every", "out",
                        "eval_every", "eval_samples"}


@click.command("gan-train", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.option("--model", default="mlp", show_default=True, metavar="|".join(MODEL_NAMES),
              help="Architecture: mlp (seed 000), mlp-bn (BatchNorm in G, seed 004), dcgan (seeds 002/003).")
@click.option("--data", default="mnist", show_default=True,
              help="mnist (bundled, offline), a folder of IDX files or images (one subfolder per class), "
                   "or a .npy/.npz array.")
@click.option("--steps", type=int, default=0, help=f"Optimiser steps to train to [default: 3000 unless --epochs].")
@click.option("--epochs", type=int, default=0, help="Train for this many passes over the data instead.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Adam learning rate for G and D.")
@click.option("--beta1", type=float, default=0.5, show_default=True)
@click.option("--beta2", type=float, default=0.999, show_default=True)
@click.option("--latent-dim", type=int, default=100, show_default=True, help="Size of z.")
@click.option("--g-hidden", callback=int_list, default="", metavar="W,W,..",
              help="G's hidden widths [default: 256,512,1024].")
@click.option("--d-hidden", callback=int_list, default="", metavar="W,W,..",
              help="D's hidden widths [default: mlp 1024,512,256; mlp-bn 784,392].")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same CPU run, bit for bit.")
@click.option("--device", default="auto", show_default=True, metavar="|".join(DEVICES),
              help="auto uses CUDA when PyTorch sees a GPU.")
@click.option("--out", default="", help="Run directory [default: runs/<model>-<timestamp>].")
@click.option("--resume", default=None, metavar="RUN_DIR|CHECKPOINT",
              help="Continue a run exactly where its checkpoint left off.")
@click.option("--log-every", type=int, default=100, show_default=True, help="Steps between metrics rows.")
@click.option("--sample-every", type=int, default=500, show_default=True, help="Steps between sample grids.")
@click.option("--ckpt-every", type=int, default=2000, show_default=True, help="Steps between step_N.pt checkpoints.")
@click.option("--cond", is_flag=True, help="Conditional model: G and D take the data's class labels.")
@click.option("--loss", default="ns", show_default=True, metavar="ns|hinge|wgan-gp",
              help="ns: non-saturating BCE on logits; hinge; wgan-gp (gradient penalty, see --gp-weight).")
@click.option("--gp-weight", type=float, default=10.0, show_default=True, help="wgan-gp's penalty weight.")
@click.option("--r1", type=float, default=0.0, show_default=True, help="R1 penalty weight on real images.")
@click.option("--d-steps", type=int, default=1, show_default=True, help="D steps per G step.")
@click.option("--ema-decay", type=float, default=0.999, show_default=True,
              help="G EMA decay (0 turns EMA off); grids, scores and export use the EMA G.")
@click.option("--eval-every", type=int, default=1000, show_default=True,
              help="Steps between quality scores (FID etc. on MNIST-shaped data; 0: never).")
@click.option("--eval-samples", type=int, default=2000, show_default=True, help="Samples per quality score.")
@click.option("--amp", default="none", show_default=True, metavar="none|bf16",
              help="bf16 autocast for forward passes (fast on GPUs with bf16; works but is slow on most CPUs).")
@click.option("--compile", "compile", is_flag=True, help="torch.compile G and D (first steps pay the compile time).")
@click.option("--cuda-graph", is_flag=True, help="Replay each D+G step as one captured CUDA graph (CUDA only).")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm across torchrun processes (CUDA only).")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.pass_context
def main(ctx: click.Context, resume: str | None, dry_run: bool, **options: Any) -> None:
    """Train a GAN and write sample grids, metrics and checkpoints to a run directory.

    \b
    Examples:
      gan-train --steps 3000                      # the MLP GAN on bundled MNIST
      gan-train --model mlp-bn --epochs 5 --out runs/bn
      gan-train --resume runs/bn --steps 20000    # continue exactly where it stopped
    """
    explicit = {name for name in options
                if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    if resume:
        model_config, train_config, run_dir, resume_state = _resumed(resume, options, explicit)
    else:
        (model_config, train_config), run_dir, resume_state = _fresh(options), None, None
    data = load_dataset(train_config.data)
    if resume_state is None:
        classes = data.class_names if options["cond"] else ()
        if options["cond"] and data.labels is None:
            raise UserError(f"{data.source}: --cond needs labelled data (IDX labels, class subfolders or npz labels)")
        model_config = dataclasses.replace(model_config, image_shape=data.image_shape, num_classes=len(classes),
                                           class_names=classes).resolved()
        model_config.validate()
        run_dir = _new_run_dir(train_config, model_config)
        train_config = dataclasses.replace(train_config, out=str(run_dir))
    elif data.image_shape != model_config.image_shape:
        raise UserError(f"{train_config.data}: images are {data.image_shape}, the checkpoint's model "
                        f"makes {model_config.image_shape}")
    if dry_run:
        click.echo(json.dumps({"model": model_config.to_dict(), "train": train_config.to_dict(),
                               "run_dir": str(run_dir), "resume": resume,
                               "data": {"source": data.source, "images": len(data.images)}}, indent=2))
        return
    last = train(model_config, train_config, data, run_dir, resume_state)
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    click.echo(f"samples:    {grids[-1] if grids else run_dir / 'samples'}")
    click.echo(f"checkpoint: {last}")
    click.echo(f"next:       gan-export {run_dir} -o model.onnx")


def _fresh(options: dict[str, Any]) -> tuple[ModelConfig, TrainConfig]:
    model_config = ModelConfig(**{field: options[name] for name, field in MODEL_OPTIONS.items() if name != "cond"})
    model_config.validate_name()
    train_config = TrainConfig(**{name: options[name] for name in TRAIN_OPTIONS})
    train_config.validate()
    return model_config, train_config


def _resumed(resume: str, options: dict[str, Any], explicit: set[str]):
    checkpoint_path = resolve_checkpoint(resume)
    state = load_checkpoint(checkpoint_path)
    model_config = ModelConfig.from_dict(state["model_config"])
    saved = TrainConfig.from_dict(state["train_config"])
    for name in explicit - CHANGEABLE_ON_RESUME:
        saved_value = getattr(model_config, MODEL_OPTIONS[name]) if name in MODEL_OPTIONS else getattr(saved, name)
        if name == "cond":
            saved_value = saved_value > 0
        if options[name] != saved_value:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"cannot change {flag} when resuming (the checkpoint has {saved_value!r}); "
                            "start a new run with --out instead")
    changes = {name: options[name] for name in explicit & CHANGEABLE_ON_RESUME}
    if "steps" in changes:
        changes.setdefault("epochs", 0)
    if "epochs" in changes:
        changes.setdefault("steps", 0)
    changes.pop("out", None)  # recorded as the run directory below
    train_config = dataclasses.replace(saved, **changes)
    train_config.validate()
    if "out" in explicit:
        run_dir = Path(options["out"])
    elif checkpoint_path.parent.name == "checkpoints":
        run_dir = checkpoint_path.parent.parent
    else:
        raise UserError(f"{checkpoint_path} is not inside a run directory; pass --out for the resumed run")
    return model_config, dataclasses.replace(train_config, out=str(run_dir)), run_dir, state


def _new_run_dir(train_config: TrainConfig, model_config: ModelConfig) -> Path:
    run_dir = Path(train_config.out or f"runs/{model_config.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if (run_dir / "checkpoints" / "last.pt").exists():
        raise UserError(f"{run_dir} already holds a trained run; continue it with --resume {run_dir} "
                        "or choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder")
    return run_dir
