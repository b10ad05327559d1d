"""A run that has failed says so: D's passes match the G step's, and the failed states of train/health.py
(D winning outright, G's output constant or saturated, NaN/Inf) each warn, reach metrics.jsonl and the
top of report.html, and end gan-train with its own exit status."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from onnxgan.errors import EXIT_FAILED_RUN
from onnxgan.train import health
from onnxgan.train.cli import main as gan_train
from onnxgan.train.config import ModelConfig, TrainConfig
from onnxgan.train.health import RunHealth
from onnxgan.train.trainer import GANTrainer

from kit import TINY_RUN

# Ds whose layers mix the samples of a batch: the two tutorial DCGANs (BatchNorm) and minibatch stddev.
MIXING = {"dcgan-upsample": {}, "dcgan-fc": {}, "mlp-mbstd": {"name": "mlp", "d_mbstd_group": 4}}  # case -> config


def tiny_trainer(model: str, **changes) -> GANTrainer:
    changes = {"name": model, **changes}
    widths = {"dcgan": ((16, 8), (8, 16)), "dcgan-upsample": ((16, 8), (8, 16)),
              "dcgan-fc": ((32, 16, 8), (8, 16, 32))}.get(
        changes["name"], ((32, 64), (64, 32)))
    config = ModelConfig(latent_dim=8, g_hidden=widths[0], d_hidden=widths[1], image_shape=(1, 8, 8), d_dropout=0.0,
                         **changes).resolved()
    config.validate()
    torch.manual_seed(0)
    return GANTrainer(config, TrainConfig(batch_size=8, amp="none"), torch.device("cpu"))


@pytest.mark.parametrize("name", MIXING)
def test_the_d_step_trains_the_d_that_the_g_step_sees(name):
    """D's outputs in its own step equal D run on real alone and on fake alone, as the G step runs it:
    with one pass over real + fake, BatchNorm normalised a mixed batch and G followed another function."""
    trainer = tiny_trainer(name, **MIXING[name])
    assert trainer.d_passes == 2
    D_before = copy.deepcopy(trainer.D)  # the weights the D step's forward pass uses
    generator = torch.Generator().manual_seed(3)
    real = torch.rand(8, 1, 8, 8, generator=generator) * 2 - 1
    fake = torch.rand(8, 1, 8, 8, generator=generator) * 0.5  # another distribution: mixing would show
    _, real_out, fake_out = trainer._d_step(real, None, fake, None, regularise=False)
    torch.testing.assert_close(real_out, D_before(real).detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fake_out, D_before(fake).detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "mlp-bn", "dcgan"])
def test_a_d_that_mixes_nothing_keeps_the_one_pass_step(name):
    assert tiny_trainer(name).d_passes == 1


def test_d_wins_after_a_streak_of_pinned_rows_and_recovery_is_said():
    watch = RunHealth("ns", real_spread=0.5, real_midtones=0.2)
    pinned = {"d_loss": 0.001, "g_loss": 9.0, "D(x)": 0.999, "D(G(z))": 0.001}
    said = [watch.observe_losses(step, pinned) for step in range(1, health.STREAK + 1)]
    assert said[:-1] == [[]] * (health.STREAK - 1) and "D wins outright" in said[-1][0]
    assert watch.failures() == [f"since step 1: {said[-1][0]}"]
    assert watch.observe_losses(9, pinned) == []  # said once, when it begins
    back = watch.observe_losses(10, {**pinned, "d_loss": 1.2})
    assert back and back[0].startswith("recovered") and watch.failures() == []


def test_a_pinned_streak_broken_by_one_row_starts_again():
    watch = RunHealth("hinge", real_spread=0.5, real_midtones=0.2)
    rows = [0.0] * (health.STREAK - 1) + [0.5] + [0.0] * (health.STREAK - 1)
    assert not any(watch.observe_losses(step, {"d_loss": loss, "g_loss": 1.0, "D(x)": 3.0, "D(G(z))": -3.0})
                   for step, loss in enumerate(rows))
    assert watch.failures() == []


def test_wgan_gp_has_no_floor_to_judge():
    watch = RunHealth("wgan-gp", real_spread=0.5, real_midtones=0.2)
    for step in range(3 * health.STREAK):
        watch.observe_losses(step, {"d_loss": -50.0, "g_loss": 40.0, "D(x)": 30.0, "D(G(z))": -20.0})
    assert watch.failures() == []


def real_digits() -> np.ndarray:
    """64 bundled MNIST digits in [-1, 1], float (64, 1, 28, 28)."""
    from onnxgan.train.data import load_mnist

    return load_mnist().images[:64].astype(np.float32) / 127.5 - 1.0


def test_constant_and_saturated_output_are_judged_against_the_real_images():
    real = real_digits()
    watch = RunHealth.for_data("ns", real)
    rng = np.random.default_rng(0)
    healthy = np.clip(real[rng.permutation(64)] + rng.normal(0, 0.1, real.shape), -1, 1).astype(np.float32)
    constant = np.repeat(real[:1], 64, axis=0)
    binary = np.where(rng.random(real.shape) < 0.5, -1.0, 1.0).astype(np.float32)  # static at both ends
    assert watch.observe_images(500, healthy) == []
    assert watch.observe_images(1000, constant) == []  # one grid proves nothing
    assert "nearly the same for every z" in watch.observe_images(1500, constant)[0]
    assert watch.observe_images(2000, binary)[0].startswith("recovered")
    assert "saturated" in watch.observe_images(2500, binary)[0]
    assert [f.split(":")[0] for f in watch.failures()] == ["since step 2000"]
    # Data that is itself black and white: saturation is what it looks like, never a failure.
    black_and_white = RunHealth.for_data("ns", np.sign(real) + (real == 0))
    for step in (500, 1000, 1500):
        black_and_white.observe_images(step, binary)
    assert black_and_white.failures() == []


def test_a_run_whose_d_wins_ends_with_exit_4_a_last_line_and_the_report_banner(tmp_path):
    """The issue's deliberately broken run: D's learning rate 1000x G's."""
    run = tmp_path / "run"
    result = CliRunner().invoke(gan_train, [*TINY_RUN, "--steps", "30", "--log-every", "2", "--sample-every", "10",
                                            "--lr", "1e-5", "--d-lr", "1e-2", "--out", str(run)])
    assert result.exit_code == EXIT_FAILED_RUN, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gan-train: error: the run failed: since step ") and "D wins outright" in last, last
    assert sum("warning:" in line and "D wins outright" in line for line in result.stderr.splitlines()) == 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("D wins outright" in w for row in rows for w in row.get("warnings", []))
    assert rows[-1]["step"] == 30 and "D wins outright" in rows[-1]["run_failed"][0]
    page = (run / "report.html").read_text()
    assert page.index("This run failed") < page.index("<h2>Summary</h2>")
    assert (run / "checkpoints" / "last.pt").exists()  # the user decides what to keep


def test_a_healthy_tiny_run_is_not_failed(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(gan_train, [*TINY_RUN, "--steps", "30", "--log-every", "2", "--sample-every", "10",
                                            "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "This run failed" not in (run / "report.html").read_text()
    assert "report:" in result.stdout
    header = result.stderr.splitlines()[0]
    assert header.startswith("training mlp-bn (conditional on 10 classes) on mnist"), header


def test_a_failed_run_resumed_past_its_failure_is_judged_anew(tmp_path):
    from onnxgan.train.report import write_report

    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": 10, "d_loss": 0.0, "g_loss": 9.0, "D(x)": 1.0, "D(G(z))": 0.0},
            {"step": 10, "run_failed": ["since step 2: D wins outright"]}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert "This run failed" in write_report(run).read_text()
    resumed = rows + [{"step": 20, "d_loss": 1.2, "g_loss": 0.9, "D(x)": 0.6, "D(G(z))": 0.4}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in resumed))
    assert "This run failed" not in write_report(run).read_text()


def test_the_report_names_the_features_its_scores_use(tmp_path):
    from onnxgan.train.report import write_report

    run = tmp_path / "run"
    run.mkdir()
    scored = {"step": 10, "fid": 30.0, "fid_floor": 2.0, "n": 100}
    (run / "metrics.jsonl").write_text(json.dumps(scored) + "\n")
    assert "features of onnxgan&#x27;s MNIST classifier: not comparable" in write_report(run).read_text()
    inception = {**scored, "features": "Inception-v3 pool3 (pytorch-fid)"}
    (run / "metrics.jsonl").write_text(json.dumps(inception) + "\n")
    assert "features of Inception-v3 pool3 (pytorch-fid): comparable" in write_report(run).read_text()
