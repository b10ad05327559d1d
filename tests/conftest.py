"""Shared fixtures for the export and runtime tests: tiny checkpoints and the committed tiny model.

Only this file's top level may be imported by tests that run without torch (test_base_install.py does
not use it); torch is imported inside the helpers that need it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
TINY_MODEL = DATA / "tiny_mlp.onnx"


def tiny_config(name: str = "mlp", **changes):
    """A small but complete ModelConfig: latent 8, G 8-16-32-64, images 1x8x8 (a conv model gets as many
    widths as its architecture takes)."""
    from onnxgan.train.config import CONV_MODELS, DEFAULT_WIDTHS, ModelConfig

    g_count, d_count = (len(DEFAULT_WIDTHS[name]["g_hidden"]), len(DEFAULT_WIDTHS[name]["d_hidden"])) \
        if name in CONV_MODELS else (2, 2)
    config = ModelConfig(name=name, latent_dim=8, g_hidden=(16, 32, 32)[:g_count], d_hidden=(32, 16, 16)[:d_count],
                         image_shape=(1, 8, 8), **changes).resolved()
    config.validate()
    return config


def write_checkpoint(path: Path, config, seed: int = 0, step: int = 3, ema: bool = False) -> Path:
    """A checkpoint as gan-train writes it, from fresh models with seeded random BatchNorm statistics
    (so that folding has something to fold) and real Adam states. ``ema`` adds a distinct G_ema."""
    import torch

    from onnxgan.train.checkpoint import save_checkpoint
    from onnxgan.train.config import TrainConfig
    from onnxgan.train.distributed import World
    from onnxgan.train.loop import rng_state
    from onnxgan.train.models import build_models

    torch.manual_seed(seed)
    G, D = build_models(config)
    for module in G.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0.0, 0.1)
    optimizers = [torch.optim.Adam(model.parameters()) for model in (G, D)]
    state = {
        "model_config": config.to_dict(), "train_config": TrainConfig(seed=seed, batch_size=16).to_dict(),  # fits the tests' small data
        "G": G.state_dict(), "D": D.state_dict(),
        "opt_G": optimizers[0].state_dict(), "opt_D": optimizers[1].state_dict(),
        "step": step, "epoch": 0, "batch_in_epoch": step, "rng": World().gather(rng_state()),  # as gan-train
    }
    if ema:
        state["G_ema"] = {key: value * 0.5 if value.is_floating_point() else value
                          for key, value in G.state_dict().items()}
    save_checkpoint(path, state)
    return path


@pytest.fixture
def tiny_model() -> Path:
    """The committed tiny generator (tests/data/make_tiny_model.py writes it)."""
    return TINY_MODEL
