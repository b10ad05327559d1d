"""--ema-bn recompute: the EMA G's BatchNorm statistics recomputed from its own activations, against a plain
one-pass reference, and what the trainer does with them."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from onnxgan.train import ema_batchnorm
from onnxgan.train.config import ModelConfig, TrainConfig
from onnxgan.train.ema_batchnorm import batchnorms, recompute_batchnorm_statistics
from onnxgan.train.models import build_models
from onnxgan.train.trainer import GANTrainer

CPU = torch.device("cpu")
MODELS = {
    "mlp-bn": ModelConfig(name="mlp-bn", g_hidden=(32, 64), d_hidden=(64, 32), latent_dim=8),
    "mlp-bn-cond": ModelConfig(name="mlp-bn", g_hidden=(32, 64), d_hidden=(64, 32), latent_dim=8, num_classes=10,
                               class_names=tuple("0123456789")),
    "dcgan": ModelConfig(name="dcgan", g_hidden=(16, 8), d_hidden=(8, 16), latent_dim=8),
}


def trained_looking_generator(config: ModelConfig) -> nn.Module:
    """G with its BatchNorm affine parameters and running statistics moved off their initial values."""
    torch.manual_seed(3)
    G = build_models(config)[0]
    with torch.no_grad():
        for m in batchnorms(G):
            m.weight.uniform_(0.5, 2.0)
            m.bias.uniform_(-1.0, 1.0)
            m.running_mean.uniform_(-3.0, 3.0)
            m.running_var.uniform_(5.0, 9.0)
    return G.eval()


def reference_statistics(G: nn.Module, config: ModelConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Plain reference: every calibration latent in one train-mode pass (momentum 1: the running statistics
    become that one batch's), the whole network run."""
    G = copy.deepcopy(G).train()
    for m in batchnorms(G):
        m.momentum = 1.0
    latents = torch.Generator().manual_seed(ema_batchnorm.CALIBRATION_SEED)
    chunks = ema_batchnorm.CALIBRATION_SAMPLES // ema_batchnorm.CALIBRATION_CHUNK
    z = torch.cat([torch.randn(ema_batchnorm.CALIBRATION_CHUNK, config.latent_dim, generator=latents)
                   for _ in range(chunks)])
    labels = (torch.arange(ema_batchnorm.CALIBRATION_CHUNK) % config.num_classes).repeat(chunks) \
        if config.num_classes else None
    with torch.no_grad():
        G(z, labels)
    return [(m.running_mean.clone(), m.running_var.clone()) for m in batchnorms(G)]


@pytest.mark.parametrize("name", MODELS)
def test_recomputed_statistics_equal_one_pass_over_all_latents(name):
    config = MODELS[name]
    G = trained_looking_generator(config)
    weights = {k: v.clone() for k, v in G.state_dict().items() if "running" not in k and "num_batches" not in k}
    expected = reference_statistics(G, config)
    rng_before = torch.random.get_rng_state()

    recompute_batchnorm_statistics(G, config.latent_dim, config.num_classes, CPU)

    for m, (mean, var) in zip(batchnorms(G), expected):
        # Chunks normalise with their own statistics and the variance averages the chunks' (a chunk's
        # mean differs from the whole's by ~1/64 of a standard deviation): close to the one pass, far from
        # the values the G came with (means within 3, variances 5-9).
        assert torch.allclose(m.running_mean, mean, atol=0.02 * var.sqrt().max().item()), name
        assert torch.allclose(m.running_var, var, rtol=0.03, atol=1e-4), name
        assert m.momentum == config.bn_momentum and not m._forward_hooks
    assert not G.training
    assert all(torch.equal(G.state_dict()[k], v) for k, v in weights.items())
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # resume depends on the global RNG


def test_recomputing_twice_gives_the_same_statistics():
    config = MODELS["mlp-bn-cond"]
    G = trained_looking_generator(config)
    recompute_batchnorm_statistics(G, config.latent_dim, config.num_classes, CPU)
    first = copy.deepcopy(G.state_dict())
    recompute_batchnorm_statistics(G, config.latent_dim, config.num_classes, CPU)
    assert all(torch.equal(first[k], v) for k, v in G.state_dict().items())


def test_a_generator_without_batchnorm_is_left_alone():
    config = ModelConfig(name="mlp", g_hidden=(32, 64), d_hidden=(64, 32), latent_dim=8)
    G = build_models(config)[0]
    before = copy.deepcopy(G.state_dict())
    recompute_batchnorm_statistics(G, config.latent_dim, 0, CPU)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())


def batches(n: int, size: int = 16):
    g = torch.Generator().manual_seed(1)
    return [[(torch.rand(size, 1, 28, 28, generator=g) * 2 - 1, None)] for _ in range(n)]


@pytest.mark.parametrize("ema_bn", ["copy", "recompute"])
def test_the_trainer_hands_out_the_ema_g_with_the_chosen_statistics(ema_bn):
    config = MODELS["mlp-bn"]
    torch.manual_seed(0)
    trainer = GANTrainer(config, TrainConfig(ema_bn=ema_bn, batch_size=16, amp="none"), CPU)
    for step, batch in enumerate(batches(5)):
        trainer.step(batch, step)
    state = trainer.state()["G_ema"]
    live = trainer.G.state_dict()
    recomputed = copy.deepcopy(trainer.G_ema)
    recompute_batchnorm_statistics(recomputed, config.latent_dim, 0, CPU)
    for key in (k for k in state if "running" in k):
        want = live[key] if ema_bn == "copy" else recomputed.state_dict()[key]
        assert torch.equal(state[key], want), key
        assert not torch.equal(state[key], recomputed.state_dict()[key] if ema_bn == "copy" else live[key]), key
