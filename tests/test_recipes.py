"""The training recipes: rpgan, the zero-centred penalties, TTUR, DiffAugment, spectral norm, minibatch
stddev, the tutorial presets; each a few CPU steps, exact resume, and its bad inputs."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from onnxgan.train import augment, losses
from onnxgan.train.checkpoint import load_checkpoint
from onnxgan.train.cli import main as gan_train
from onnxgan.train.config import AUGMENTS, ModelConfig
from onnxgan.train.models import build_models
from onnxgan.train.cli import MODEL_OPTIONS
from onnxgan.train.presets import PRESETS, SCHEDULE

from kit import run_train, tensors_of

RECIPES = {
    "rpgan-gamma": ["--loss", "rpgan", "--gamma", "0.5"],
    "rpgan-lazy-ttur": ["--loss", "rpgan", "--gamma", "1", "--reg-every", "3", "--d-lr", "5e-4"],
    "hinge-sn-mbstd": ["--loss", "hinge", "--d-spectral-norm", "--d-mbstd", "4"],
    "ns-augment-cond": ["--augment", "translation,cutout", "--cond", "--gamma", "0.1"],
    # the EMA G's statistics recomputed at reads that fall on other steps in the whole and the halved run
    "ema-bn-recompute": ["--ema-bn", "recompute", "--sample-every", "4", "--ckpt-every", "5"],
}


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_recipe_trains_and_resumes_bit_for_bit(tmp_path, recipe):
    common = [*recipe, "--seed", "5", "--log-every", "4"]
    assert run_train(*common, "--steps", "12", "--out", str(tmp_path / "whole")).exit_code == 0
    assert run_train(*common, "--steps", "6", "--out", str(tmp_path / "half")).exit_code == 0
    resumed = CliRunner().invoke(gan_train, ["--resume", str(tmp_path / "half"), "--steps", "12"])
    assert resumed.exit_code == 0, resumed.output
    a, b = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt") for run in ("whole", "half"))
    ta, tb = tensors_of(a), tensors_of(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name
    rows = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["d_loss"])) for r in rows)


def test_rpgan_losses_pair_real_with_fake():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # softplus(-(r - f)) for the pairs (2, 0) and (0, 1), averaged; G's is the mirror image.
    expected_d = (torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log1p(torch.exp(torch.tensor(1.0)))) / 2
    expected_g = (torch.log1p(torch.exp(torch.tensor(2.0))) + torch.log1p(torch.exp(torch.tensor(-1.0)))) / 2
    assert torch.allclose(losses.d_loss("rpgan", real, fake), expected_d)
    assert torch.allclose(losses.g_loss("rpgan", fake, real), expected_g)
    # Shifting every score by a constant changes nothing: only the differences count.
    assert torch.allclose(losses.d_loss("rpgan", real + 3, fake + 3), expected_d)


def test_squared_gradient_norms_of_a_linear_critic():
    weight = torch.tensor([3.0, -4.0])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    norms = losses.squared_gradient_norms(x @ weight, x)
    assert torch.allclose(norms, torch.full((5,), 25.0))  # |w|^2 for every sample


def test_augmentations_keep_shape_and_pass_gradients():
    assert set(augment.TRANSFORMS) == set(AUGMENTS)  # one list of names, two places that must agree
    torch.manual_seed(0)
    images = (torch.rand(6, 1, 28, 28) * 2 - 1).requires_grad_(True)
    moved = augment.translation(images)
    assert moved.shape == images.shape
    # A translation only moves pixels or brings in the -1 border: every value came from the input or is -1.
    assert set(moved.detach().flatten().tolist()) <= set(images.detach().flatten().tolist()) | {-1.0}
    cut = augment.cutout(images)
    zeroed = (cut == 0).flatten(1).sum(dim=1)
    assert ((zeroed > 0) & (zeroed <= 14 * 14)).all()  # one square of at most half the side, per image
    augment.augment(images, AUGMENTS).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_minibatch_std_groups_never_mix_real_and_fake():
    config = ModelConfig(latent_dim=8, g_hidden=(16,), d_hidden=(16,), image_shape=(1, 8, 8),
                         d_mbstd_group=4).resolved()
    _, D = build_models(config)
    D.eval()
    torch.manual_seed(1)
    real, fake = torch.rand(8, 1, 8, 8), torch.rand(8, 1, 8, 8)
    together = D(torch.cat([real, fake]))
    assert torch.allclose(together[:8], D(real)) and torch.allclose(together[8:], D(fake))


def test_spectral_norm_bounds_each_weight():
    config = ModelConfig(latent_dim=8, g_hidden=(16,), d_hidden=(64, 32), image_shape=(1, 8, 8),
                         d_spectral_norm=True).resolved()
    torch.manual_seed(0)
    _, D = build_models(config)
    D.train()
    for _ in range(20):  # power iterations run in training-mode forward passes
        D(torch.rand(4, 1, 8, 8))
    linears = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    with torch.no_grad():
        for layer in linears:
            assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_trains_resumes_and_records_itself(tmp_path, name):
    out = tmp_path / name
    # The presets' full widths, cut to 2 steps (and 1 + a resume to 2); --batch-size stays the preset's.
    common = ["--preset", name, "--eval-every", "0", "--data", str(tmp_path / "data.npz")]
    result = CliRunner().invoke(gan_train, [*common, "--steps", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    half = CliRunner().invoke(gan_train, [*common, "--steps", "1", "--out", str(tmp_path / "half")])
    assert half.exit_code == 0, half.output
    resumed = CliRunner().invoke(gan_train, ["--resume", str(tmp_path / "half"), "--steps", "2"])
    assert resumed.exit_code == 0, resumed.output
    a, b = (tensors_of(load_checkpoint(run / "checkpoints" / "last.pt")) for run in (out, tmp_path / "half"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["preset"] == name and config["train"]["preset_overrides"] == ["steps"]
    for option, value in PRESETS[name].options.items():  # every value the preset sets reached the configs
        if option in SCHEDULE:
            continue
        if option == "cond":
            assert (config["model"]["num_classes"] > 0) == value
        elif option in MODEL_OPTIONS:
            recorded = config["model"][MODEL_OPTIONS[option]]
            assert (tuple(recorded) if isinstance(recorded, list) else recorded) == value, option
        else:
            assert config["train"][option] == value, option


@pytest.fixture(autouse=True)
def small_data(tmp_path):
    """MNIST-shaped random images with labels: one batch of the largest batch any preset takes."""
    import numpy as np

    count = max(preset.options.get("batch_size", 128) for preset in PRESETS.values())
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", images=rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
             labels=rng.integers(0, 10, count))


def test_command_line_overrides_a_preset(tmp_path):
    result = CliRunner().invoke(gan_train, ["--preset", "tf-mlp", "--lr", "3e-4", "--dry-run"])
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.output)
    assert resolved["train"]["lr"] == 3e-4 and resolved["train"]["beta1"] == 0.9  # ours, then the preset's
    assert resolved["model"]["latent_dim"] == 128 and resolved["model"]["init"] == "truncated-normal-0.1"
    assert resolved["train"]["preset_overrides"] == ["lr"]


def test_list_presets_names_every_preset():
    result = CliRunner().invoke(gan_train, ["--list-presets"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines() if not line.startswith(" ")] == list(PRESETS)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_no_preset_enters_a_failed_state_in_its_first_steps(tmp_path, name):
    """Each preset at its full widths, 6 steps on 768 real digits, checked at every step: no failed state
    of train/health.py begins (D winning outright, G constant or saturated), and the run ends with exit 0."""
    import numpy as np

    from onnxgan.train.data import load_mnist

    digits = load_mnist()
    np.savez(tmp_path / "digits.npz", images=digits.images[:768, 0], labels=digits.labels[:768])
    out = tmp_path / "run"
    result = CliRunner().invoke(gan_train, ["--preset", name, "--eval-every", "0", "--data", str(tmp_path / "digits.npz"),
                                            "--steps", "6", "--log-every", "1", "--sample-every", "2",
                                            "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row for row in rows if "warnings" in row or "run_failed" in row] == []
    assert len([row for row in rows if "d_loss" in row]) == 6
