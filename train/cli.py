"""``gan-train``: options -> (ModelConfig, TrainConfig) -> the loop, or a resumed run.

Resuming takes every setting from the checkpoint; only the schedule (--steps, --epochs, --log-every,
--sample-every, --ckpt-every, --eval-every), the scoring (--eval-samples, --eval-real, --inception),
--device, --cuda-graph and --out may change (CHANGEABLE_ON_RESUME), and asking to change anything else
is an error rather than a silent surprise.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from onnxgan.cli import CONTEXT_SETTINGS, Command, int_list
from onnxgan.errors import UserError

from .augment import MIN_SIDE as AUGMENT_MIN_SIDE
from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import (ACTIVATIONS, AMPS, AUGMENTS, BN_POSITIONS, CUDA_GRAPHS, DEFAULT_WIDTHS, DEVICES, EMA_BN,
                     DEFAULT_STEPS, EVAL_REAL, INITS, LOSSES, MODEL_NAMES, ModelConfig, TrainConfig,
                     conditional_by_default, model_for_data)
from .data import check_fits, load_dataset
from .distributed import launched_rank
from .loop import train
from .presets import PRESETS, SCHEDULE, apply_preset, preset_table
from .run_files import check_run_dir, default_run_dir, locked_run_dir, resumed_run
from .scoring import inception_weights

MODEL_OPTIONS = {"model": "name", "latent_dim": "latent_dim", "g_hidden": "g_hidden", "d_hidden": "d_hidden",
                 "d_dropout": "d_dropout", "d_spectral_norm": "d_spectral_norm", "d_mbstd": "d_mbstd_group",
                 "activation": "activation", "init": "init", "bn_position": "bn_position", "bn_eps": "bn_eps",
                 "bn_momentum": "bn_momentum", "cond": "num_classes"}
RECORDS = ("preset", "preset_overrides")  # TrainConfig fields set from --preset, not options of their own
TRAIN_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in RECORDS)
CHANGEABLE_ON_RESUME = {"steps", "epochs", "device", "log_every", "sample_every", "ckpt_every", "out",
                        "eval_every", "eval_samples", "eval_real", "inception", "cuda_graph"}
MODEL_DEFAULTS, TRAIN_DEFAULTS = ModelConfig(), TrainConfig()


def _model_default(option: str) -> Any:
    """The click default of a model option: its ModelConfig field's default (one place for each fact)."""
    return getattr(MODEL_DEFAULTS, MODEL_OPTIONS[option])


def _widths(key: str) -> str:
    return "; ".join(f"{name} {','.join(map(str, widths[key]))}" for name, widths in DEFAULT_WIDTHS.items())


def _train_option(name: str, help: str | None = None, **kwargs: Any):
    """A click option for TrainConfig field ``name``, its default taken from the dataclass."""
    default = getattr(TRAIN_DEFAULTS, name)
    kwargs.setdefault("type", type(default) if not isinstance(default, (bool, tuple)) else None)
    if isinstance(default, tuple):  # given as "a,b" on the command line; the callback splits it
        default = ",".join(default)
    if isinstance(default, bool):
        kwargs["is_flag"] = True
    return click.option("--" + name.replace("_", "-"), name, default=default, show_default=not isinstance(
        default, bool) and default not in ("", 0, ()), help=help, **kwargs)


def _list_presets(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        click.echo(preset_table())
        ctx.exit(0)


@click.command("gan-train", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.option("--preset", default=None, metavar="|".join(PRESETS),
              help="Start from a named recipe (--list-presets shows them); options given here override it.")
@click.option("--list-presets", is_flag=True, expose_value=False, is_eager=True, callback=_list_presets,
              help="List the presets and exit.")
@click.option("--model", default=_model_default("model"), show_default=True, metavar="|".join(MODEL_NAMES),
              help="Architecture: mlp (Keras MLP GAN), mlp-bn (BatchNorm in G), dcgan (transposed convs), "
                   "dcgan-upsample (the Keras DCGAN: upsampling + convs), dcgan-fc (the PaddlePaddle DCGAN: fc layers "
                   "+ transposed convs).")
@_train_option("data", "mnist (bundled, offline), a folder of IDX files or images (one subfolder per class), "
                       "or a .npy/.npz array.")
@_train_option("image_size", "A folder of images: resize each (shorter side to N, bicubic) and crop its centre to "
                             "N x N, so pictures of any size train together (0: as found, all of one size).",
               metavar="N")
@_train_option("channels", "A folder of images: 1 converts all to grey, 3 all to RGB (0: as found; one colour image "
                           "makes the set RGB).", metavar="0|1|3")
@_train_option("steps", f"Optimiser steps to train to [default: {DEFAULT_STEPS} unless --epochs].")
@_train_option("epochs", "Train for this many passes over the data instead.")
@_train_option("batch_size")
@_train_option("lr", "Adam learning rate of G (and of D with --d-lr 0).")
@_train_option("d_lr", "D's Adam learning rate (0: the same as --lr); twice G's by default (TTUR).")
@_train_option("beta1")
@_train_option("beta2")
@click.option("--latent-dim", type=int, default=_model_default("latent_dim"), show_default=True, help="Size of z.")
@click.option("--g-hidden", callback=int_list, default="", metavar="W,W,..",
              help=f"G's hidden widths (dcgan: channels) [default: {_widths('g_hidden')}].")
@click.option("--d-hidden", callback=int_list, default="", metavar="W,W,..",
              help=f"D's hidden widths (dcgan: channels) [default: {_widths('d_hidden')}].")
@click.option("--d-dropout", type=float, default=_model_default("d_dropout"),
              help="Dropout in D [default: the model's, mlp and dcgan 0.3, mlp-bn 0].")
@click.option("--d-spectral-norm", is_flag=True, default=_model_default("d_spectral_norm"),
              help="Spectral normalisation of D's weights.")
@click.option("--d-mbstd", type=int, default=_model_default("d_mbstd"), metavar="GROUP",
              help="Minibatch standard deviation feature in D over groups of GROUP samples (0: off).")
@click.option("--activation", default=_model_default("activation"), show_default=True, metavar="|".join(ACTIVATIONS),
              help="Hidden activation of the mlp models.")
@click.option("--init", default=_model_default("init"), show_default=True, metavar="|".join(INITS),
              help="Initial weights: torch's defaults, Keras' Glorot uniform, TF's truncated normal (sd 0.1), or the DCGAN "
                   "paper's normal (sd 0.02).")
@click.option("--bn-position", default=_model_default("bn_position"), show_default=True,
              metavar="|".join(BN_POSITIONS), help="mlp-bn: BatchNorm before or after each hidden activation.")
@click.option("--bn-eps", type=float, default=_model_default("bn_eps"), show_default=True, help="BatchNorm epsilon.")
@click.option("--bn-momentum", type=float, default=_model_default("bn_momentum"), show_default=True,
              help="BatchNorm momentum, PyTorch's convention (Keras' 0.8 is 0.2 here).")
@_train_option("seed", "Same seed, same CPU run, bit for bit.")
@_train_option("device", "auto uses CUDA when PyTorch sees a GPU.", metavar="|".join(DEVICES), type=str)
@_train_option("out", "Run directory [default: runs/<model>-<timestamp>].")
@click.option("--resume", default=None, metavar="RUN_DIR|CHECKPOINT",
              help="Continue a run exactly where its checkpoint left off.")
@_train_option("log_every", "Steps between metrics rows.")
@_train_option("sample_every", "Steps between sample grids.")
@_train_option("ckpt_every", "Steps between step_N.pt checkpoints.")
@click.option("--cond/--no-cond", default=None,
              help="Conditional model: G and D take the data's class labels [default: when the data has labels].")
@_train_option("loss", "ns: non-saturating BCE on logits; hinge; wgan-gp (see --gp-weight); rpgan: R3GAN's "
                       "relativistic pairing loss (use with --gamma).", metavar="|".join(LOSSES))
@_train_option("gp_weight", "wgan-gp's penalty weight.")
@_train_option("r1", "R1 penalty weight on real images.")
@_train_option("gamma", "Zero-centred penalties on real and fake images, gamma/2 * (R1 + R2).")
@_train_option("reg_every", "Lazy regularisation: the penalties every k-th D step, weighted by k.")
@_train_option("augment", f"DiffAugment for D: a comma-separated list of {', '.join(AUGMENTS)}.",
               callback=lambda ctx, param, value: tuple(part for part in value.split(",") if part),
               metavar="T,T", type=str)
@_train_option("d_steps", "D steps per G step.")
@_train_option("ema_decay", "G EMA decay (0 turns EMA off); grids, scores and export use the EMA G.")
@_train_option("ema_bn", "The EMA G's BatchNorm statistics: copied from G each step (copy), or recomputed from "
                         "the EMA G's own activations on 16384 fixed latents whenever it is used (recompute).",
               metavar="|".join(EMA_BN))
@_train_option("eval_every", "Steps between quality scores of the EMA G (FID etc.; 0: never).")
@_train_option("eval_samples", "Samples per quality score (and training images they are compared with in "
                               "Inception features).")
@_train_option("eval_real", "Score in pytorch-fid's Inception features against the training data; auto: for data "
                            "that is not MNIST-shaped when the weights are given (--inception or the cached file). "
                            "A bare --eval-real is on.", metavar="|".join(EVAL_REAL), is_flag=False, flag_value="on")
@_train_option("inception", "pytorch-fid's Inception weights for --eval-real: a .pth file, or 'download' to fetch them "
                            "once into the user's cache [default: the cached file].", metavar="WEIGHTS.pth|download")
@_train_option("amp", "bf16 autocast for forward passes; auto: bf16 on CPUs that multiply bf16 natively (AVX-512 "
                      "BF16, AMX), fp32 elsewhere.", metavar="|".join(AMPS))
@_train_option("compile", "torch.compile G and D (first steps pay the compile time).")
@_train_option("cuda_graph", "Replay each D+G step as one captured CUDA graph; auto: wherever it can (one CUDA "
                             "process, no --compile, --d-steps 1, no gradient penalty). A bare --cuda-graph is on.",
               metavar="|".join(CUDA_GRAPHS), is_flag=False, flag_value="on")
@_train_option("sync_bn", "SyncBatchNorm across torchrun processes (CUDA only).")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.pass_context
def main(ctx: click.Context, preset: str | None, resume: str | None, dry_run: bool, **options: Any) -> None:
    """Train a GAN and write sample grids, metrics and checkpoints to a run directory.

    \b
    Examples:
      gan-train                                   # the default recipe on bundled MNIST (about 4 minutes)
      gan-train --preset keras-mlp                # a tutorial's recipe (--list-presets)
      gan-train --model mlp-bn --epochs 5 --out runs/bn
      gan-train --resume runs/bn --steps 20000    # continue exactly where it stopped
    """
    explicit = {name for name in options
                if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    if resume:
        if preset:
            raise UserError("--preset starts a new run; a resumed run keeps the settings in its checkpoint")
        model_config, train_config, run_dir, resume_state = _resumed(resume, options, explicit)
    else:
        options = apply_preset(preset, options, explicit)
        (model_config, train_config), run_dir, resume_state = _fresh(options), None, None
        if preset:  # config.json and checkpoints record the preset and what the command line changed in it
            overridden = tuple(sorted(explicit & (set(PRESETS[preset].options) | SCHEDULE)))
            train_config = dataclasses.replace(train_config, preset=preset, preset_overrides=overridden)
    data = load_dataset(train_config.data, train_config.image_size, train_config.channels)
    model_choice = None  # why the model is what it is, when the data chose it
    if resume_state is None and "model" not in explicit and "model" not in (PRESETS[preset].options if preset else {}):
        name, model_choice = model_for_data(data.image_shape)
        if name != model_config.name:  # the data moved it off the default recipe: say so
            click.echo(f"model {model_choice} (--model picks another)", err=True)
        model_config = dataclasses.replace(model_config, name=name)
    if resume_state is None:
        conditional = conditional_by_default(options["cond"], data.labels is not None)
        classes = data.class_names if conditional else ()
        if conditional and data.labels is None:
            raise UserError(f"{data.source}: --cond needs labelled data (IDX labels, class subfolders or npz labels)")
        model_config = dataclasses.replace(model_config, image_shape=data.image_shape, num_classes=len(classes),
                                           class_names=classes).resolved()
        model_config.validate()
        _check_batch_norm(model_config, train_config.batch_size)
        if train_config.augment and min(model_config.image_shape[1:]) < AUGMENT_MIN_SIDE:
            raise UserError(f"--augment needs images of at least {AUGMENT_MIN_SIDE}x{AUGMENT_MIN_SIDE} pixels to move "
                            f"and cut; these are {model_config.image_shape[1]}x{model_config.image_shape[2]}")
    else:
        check_fits(data, model_config.image_shape, model_config.num_classes)
    weights = inception_weights(model_config, train_config)  # --eval-real on without weights: refused before any file
    if resume_state is None:
        run_dir = _new_run_dir(train_config, model_config, dry_run)
        train_config = dataclasses.replace(train_config, out=str(run_dir))
    if dry_run:
        click.echo(json.dumps({"model": model_config.to_dict(), "train": train_config.to_dict(),
                               "model_choice": model_choice,
                               "inception_weights": None if weights is None else str(weights),
                               "run_dir": str(run_dir), "resume": resume,
                               "data": {"source": data.source, "images": len(data.images)}}, indent=2))
        return
    with locked_run_dir(run_dir, resumed_run(resume) if resume else None, writes=launched_rank() == 0,
                        created=resume_state is None and not options["out"]):
        last = train(model_config, train_config, data, run_dir, resume_state)
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    click.echo(f"samples:    {grids[-1] if grids else run_dir / 'samples'}")
    click.echo(f"checkpoint: {last}")
    click.echo(f"report:     {run_dir / 'report.html'}")
    click.echo(f"next:       gan-export {run_dir} -o model.onnx")


def _check_batch_norm(model_config: ModelConfig, batch_size: int) -> None:
    """BatchNorm over (N, features) cannot normalise one sample in training (N = 1: every feature's
    variance is 0), so a model with such a layer in G or D needs batches of 2 or more; found from the
    built models, not from a list of names."""
    if batch_size >= 2:
        return
    import torch

    from .models import build_models

    if any(isinstance(module, torch.nn.BatchNorm1d) for net in build_models(model_config) for module in net.modules()):
        raise UserError(f"--batch-size {batch_size}: {model_config.name} has BatchNorm layers, which need batches of "
                        "at least 2 samples; use --batch-size 2 or more (or --model mlp)")


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
    check_run_dir(run_dir, resumed_run(resume))
    return model_config, dataclasses.replace(train_config, out=str(run_dir)), run_dir, state


def _new_run_dir(train_config: TrainConfig, model_config: ModelConfig, dry_run: bool) -> Path:
    """--out (missing or empty), or a new runs/<model>-<timestamp> made for this run alone (rank 0)."""
    if train_config.out:
        check_run_dir(Path(train_config.out))
        return Path(train_config.out)
    return default_run_dir(model_config.name, create=not dry_run and launched_rank() == 0)
