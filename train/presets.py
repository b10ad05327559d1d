"""Named recipes for ``gan-train --preset NAME``: onnxgan's own measured recipes (the default, 10-minute
ones), and the five tutorials the product grew out of, each reproduced as closely as onnxgan's loop
allows.

A preset is a set of gan-train option values (the click parameter names); options given on the
command line override it, and config.json records the preset, its values and what was overridden.
What a tutorial does that the loop cannot is listed in its ``differs`` line, never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onnxgan.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line for --list-presets and --help
    options: dict[str, Any] = field(default_factory=dict)  # click parameter name -> value
    differs: str = ""  # what the original recipe does that this one does not


SCHEDULE = {"steps", "epochs"}  # one or the other says how long to train

# The tutorials keep no EMA of G (ema_decay 0): their G is what they show and save.
PRESETS = {p.name: p for p in (
    Preset("default", "onnxgan's default (the same as no preset): conditional mlp-bn (G 100-256-512-1024-784 "
           "with BatchNorm, folded away on export), D 784-512-256-1, Adam(0.5) at 5e-4 for G and 1e-3 for D, "
           "batch 128, BCE, EMA 0.998, 10000 steps: about 4 minutes on 2 AVX2 CPU cores in fp32, 2 with native bf16"),
    Preset("quality-10min", "the default recipe for 30000 steps: about 10 minutes on 2 CPU cores in fp32, 5 with "
           "native bf16",
           {"steps": 30000}),
    Preset("mlp-10min", "the unconditional G 100-256-512-1024-784 (BatchNorm while training, a plain MLP once "
           "exported), the default recipe with batch 768, one learning rate (1e-3) for G and D, Adam betas "
           "(0, 0.9) and the EMA G's BatchNorm statistics recomputed, 10000 steps: about 12 minutes on 2 CPU "
           "cores in fp32, 4 with native bf16",
           {"model": "mlp-bn", "cond": False, "batch_size": 768, "lr": 1e-3, "d_lr": 0.0, "beta1": 0.0,
            "beta2": 0.9, "ema_bn": "recompute", "steps": 10000}),
    Preset("keras-mlp", "Keras MLP GAN: G 100-256-512-1024-784, D 784-1024-512-256-1, LeakyReLU 0.2, "
           "dropout 0.3, Glorot, Adam(2e-4, 0.5), BCE, batch 128, 6400 steps",
           {"model": "mlp", "cond": False, "latent_dim": 100, "g_hidden": (256, 512, 1024), "d_hidden": (1024, 512, 256),
            "d_dropout": 0.3, "activation": "leaky_relu", "init": "glorot-uniform", "batch_size": 128,
            "lr": 2e-4, "d_lr": 0.0, "beta1": 0.5, "beta2": 0.999, "loss": "ns", "steps": 6400, "ema_decay": 0.0},
           "real batches are an epoch's permutation, not drawn with replacement"),
    Preset("tf-mlp", "TensorFlow 1 MLP GAN: z 128, G 128-256-512-784 and D 784-512-256-1 with ReLU, "
           "dropout 0.3, truncated-normal(0.1) weights, one Adam(1e-4), BCE, batch 256, 500 epochs",
           {"model": "mlp", "cond": False, "latent_dim": 128, "g_hidden": (256, 512), "d_hidden": (512, 256), "d_dropout": 0.3,
            "activation": "relu", "init": "truncated-normal-0.1", "batch_size": 256, "lr": 1e-4, "d_lr": 0.0,
            "beta1": 0.9, "beta2": 0.999, "loss": "ns", "epochs": 500, "ema_decay": 0.0},
           "the data are shuffled each epoch (the tutorial walks them in file order); two Adam optimisers "
           "with the same settings instead of one over both nets (the same updates)"),
    Preset("keras-dcgan", "Keras DCGAN: G Dense 128x7x7, upsample + 5x5 conv 64, ReLU, upsample + 5x5 conv, "
           "tanh; D 5x5/2 convs 64, 128, BatchNorm, dropout 0.3; Glorot, Adam(2e-4, 0.5), 10000 steps",
           {"model": "dcgan-upsample", "cond": False, "latent_dim": 100, "g_hidden": (128, 64), "d_hidden": (64, 128),
            "d_dropout": 0.3, "init": "glorot-uniform", "bn_eps": 1e-3, "batch_size": 64, "lr": 2e-4, "d_lr": 0.0,
            "beta1": 0.5, "beta2": 0.999, "loss": "ns", "steps": 10000, "ema_decay": 0.0},
           "G trains on the D step's 64 noises, not 128 fresh ones; images are in [-1, 1] (the tutorial "
           "feeds [0, 1] to a tanh G, a mismatch)"),
    Preset("paddle-dcgan", "PaddlePaddle DCGAN: G fc 2048, fc 128x7x7 (BatchNorm, ReLU), 5x5/2 transposed "
           "convs 128 and 1; D conv + max-pool 64, 128, fc 1024 with BatchNorm; Adam(2e-4, 0.5), batch 128, 5 epochs",
           {"model": "dcgan-fc", "cond": False, "latent_dim": 100, "g_hidden": (2048, 128, 128), "d_hidden": (64, 128, 1024),
            "d_dropout": 0.0, "init": "glorot-uniform", "bn_momentum": 0.1, "batch_size": 128, "lr": 2e-4, "d_lr": 0.0,
            "beta1": 0.5, "beta2": 0.999, "loss": "ns", "epochs": 5, "ema_decay": 0.0},
           "Adam's beta1 is 0.5, the DCGAN paper's, not Paddle's default 0.9: with 0.9 G's deconvolution ReLUs "
           "died within 500 steps and every image was black (D's BatchNorm cannot see it: a batch of identical "
           "fakes normalises to one feature vector; gan-train flags it as constant output); D's convolutions "
           "pad to keep the side; the activation after G's BatchNorm layers is ReLU"),
    Preset("keras-mlp-bn", "Keras MLP GAN with BatchNorm: G 100-256-512-1024-784 with BatchNorm after each "
           "LeakyReLU (eps 1e-3), D 784-784-392-1, Glorot, Adam(2e-4, 0.5), batch 16 + 16, 20000 steps",
           {"model": "mlp-bn", "cond": False, "latent_dim": 100, "g_hidden": (256, 512, 1024), "d_hidden": (784, 392),
            "d_dropout": 0.0, "activation": "leaky_relu", "bn_position": "after-activation", "bn_eps": 1e-3,
            "init": "glorot-uniform", "batch_size": 16, "lr": 2e-4, "d_lr": 0.0, "beta1": 0.5, "beta2": 0.999,
            "loss": "ns", "steps": 20000, "ema_decay": 0.0},
           "G trains on the D step's 16 noises (the tutorial draws 32); real batches are an epoch's "
           "permutation (the tutorial takes a contiguous slice from a random start)"),
)}


def apply_preset(name: str | None, options: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
    """``options`` with the preset's values wherever the command line did not set the option."""
    if not name:
        return options
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)} (gan-train --list-presets)")
    kept = set(explicit)
    if kept & SCHEDULE:  # --steps on the command line replaces a preset's --epochs, and the reverse
        kept |= SCHEDULE
    return {**options, **{k: v for k, v in PRESETS[name].options.items() if k not in kept}}


def preset_table() -> str:
    """The text of ``gan-train --list-presets``."""
    width = max(map(len, PRESETS))
    lines = []
    for preset in PRESETS.values():
        lines.append(f"{preset.name:{width}}  {preset.summary}")
        if preset.differs:
            lines.append(f"{'':{width}}  differs: {preset.differs}")
    return "\n".join(lines)
