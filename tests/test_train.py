"""gan-train end to end: outputs, exact resume, Ctrl-C, user mistakes (CliRunner and real processes)."""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from onnxgan.errors import UserError
from onnxgan.train.checkpoint import load_checkpoint
from onnxgan.train.cli import main as gan_train
from onnxgan.train import trainer as trainer_module
from onnxgan.train.config import TrainConfig
from onnxgan.train.distributed import World

from kit import TINY_RUN, as_from_a_terminal, run_train, tensors_of


@pytest.mark.slow  # 15-50 s each on 2 busy cores
@pytest.mark.parametrize("model", [
    ["--model", "mlp"],
    ["--model", "mlp-bn", "--cond", "--loss", "hinge"],
    ["--model", "dcgan", "--g-hidden", "8,4", "--d-hidden", "4,8", "--cond", "--d-steps", "2", "--r1", "0.1"],
    ["--model", "mlp", "--loss", "wgan-gp", "--ema-decay", "0"],
], ids=["mlp", "mlp-bn-cond-hinge", "dcgan-cond-dsteps-r1", "mlp-wgan-gp-no-ema"])
def test_resume_continues_bit_for_bit(tmp_path, model):
    whole = run_train(*model, "--steps", "24", "--out", str(tmp_path / "whole"), "--seed", "3", "--log-every", "5")
    assert whole.exit_code == 0, whole.output
    half = run_train(*model, "--steps", "12", "--out", str(tmp_path / "half"), "--seed", "3", "--log-every", "5")
    assert half.exit_code == 0, half.output
    resumed = CliRunner().invoke(gan_train, ["--resume", str(tmp_path / "half"), "--steps", "24"])
    assert resumed.exit_code == 0, resumed.output

    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.pt")
    batches = 48 if "--d-steps" in model else 24
    assert (a["step"], a["epoch"], a["batch_in_epoch"]) == (b["step"], b["epoch"], b["batch_in_epoch"]) == (24, 0, batches)
    assert ("G_ema" in a) == ("--ema-decay" not in model)  # only the last case turns EMA off
    ta, tb = tensors_of(a), tensors_of(b)
    assert ta.keys() == tb.keys() and len(ta) > 10
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name
    assert torch.equal(a["rng"][0]["cpu"], b["rng"][0]["cpu"])
    # metrics: the resumed run appends after the checkpoint without duplicating rows.
    steps = [json.loads(line)["step"] for line in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 12, 15, 20, 24]


def test_run_directory_holds_config_metrics_grids_and_checkpoints(tmp_path):
    out = tmp_path / "run"
    result = run_train("--steps", "10", "--out", str(out), "--sample-every", "5", "--ckpt-every", "5",
                       "--log-every", "5")
    assert result.exit_code == 0, result.output
    assert f"gan-export {out} -o model.onnx" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["g_hidden"] == [16, 32] and config["train"]["steps"] == 10
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10]
    assert {"d_loss", "g_loss", "D(x)", "D(G(z))", "steps_per_s", "wall_time", "epoch"} <= rows[0].keys()
    assert all(0.0 < r["D(x)"] < 1.0 and np.isfinite(r["d_loss"]) for r in rows)
    grids = sorted(p.name for p in (out / "samples").iterdir())
    assert grids == ["step_0000005.png", "step_0000010.png"]
    picture = Image.open(out / "samples" / "step_0000010.png")
    assert picture.size == (8 * (28 * 2 + 2) + 2,) * 2  # 8 x 8 digits, each upscaled 2x, 2 px gaps
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["last.pt", "step_0000005.pt", "step_0000010.pt"]


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert run_train("--steps", "4", "--seed", seed, "--out", str(tmp_path / name)).exit_code == 0
    a, b, c = (tensors_of(load_checkpoint(tmp_path / n / "checkpoints" / "last.pt")) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["G.net.0.weight"], c["G.net.0.weight"])


@pytest.mark.parametrize("args, words", [
    (["--model", "gpt"], "unknown model 'gpt'"),
    (["--steps", "-1"], "--steps must be an integer >= 0"),
    (["--steps", "5", "--epochs", "1"], "not both"),
    (["--batch-size", "0"], "--batch-size must be an integer in [1, 65536], got 0"),
    (["--lr", "0"], "--lr must be a finite number in (0, 1], got 0.0"),
    (["--device", "tpu"], "--device must be one of"),
    (["--data", "/nonexistent/data"], "/nonexistent/data: no such file or folder"),
    (["--g-hidden", "32,x"], "comma-separated integers"),
    (["--steps", "abc"], "'abc' is not a valid integer"),
    (["--batch-size", "70000"], "--batch-size must be an integer in"),
    (["--resume", "/nonexistent/run"], "no such run directory or checkpoint"),
    (["--cuda-graph", "--device", "cpu"], "--cuda-graph needs --device cuda"),
    (["--sync-bn", "--device", "cpu"], "--sync-bn needs several CUDA processes"),
    (["--cuda-graph", "on", "--device", "cpu"], "--cuda-graph needs --device cuda"),
    (["--cuda-graph", "sometimes"], "--cuda-graph must be one of auto, on, off"),
    (["--amp", "fp8"], "--amp must be one of auto, none, bf16"),
    (["--ema-bn", "average"], "--ema-bn must be one of copy, recompute"),
    (["--ema-bn", "recompute", "--ema-decay", "0"], "which --ema-decay 0 turns off"),
    (["--loss", "l2"], "--loss must be one of ns, hinge, wgan-gp, rpgan"),
    (["--model", "dcgan", "--data", str(Path(__file__).parent / "data" / "odd_side.npy")], "multiples of 4"),
    (["--cond", "--data", str(Path(__file__).parent / "data" / "odd_side.npy")], "--cond needs labelled data"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "keras-mlp", "--resume", "/nonexistent/run"], "--preset starts a new run"),
    (["--gamma", "-1"], "--gamma"),
    (["--augment", "rotate"], "unknown: rotate"),
    (["--augment", "cutout", "--data", str(Path(__file__).parent / "data" / "tiny_side.npy")], "--augment needs"),
    (["--d-mbstd", "5"], "multiple of the minibatch-stddev group"),
    (["--d-lr", "-1"], "--d-lr"),
    (["--reg-every", "0"], "--reg-every must be an integer >= 1"),
    (["--init", "he"], "unknown init 'he'"),
])
def test_user_mistakes_get_one_line_and_exit_2(tmp_path, args, words):
    result = CliRunner().invoke(gan_train, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gan-train: error: ") and words in lines[0], result.output
    assert not (tmp_path / "run").exists()


def test_resume_of_a_run_folder_without_last_pt_takes_its_newest_step_checkpoint(tmp_path):
    """A kill inside the first last.pt write leaves step_N.pt only; --resume RUN_DIR goes on from it."""
    out = tmp_path / "run"
    assert run_train("--steps", "10", "--ckpt-every", "4", "--out", str(out)).exit_code == 0
    (out / "checkpoints" / "last.pt").unlink()
    resumed = CliRunner().invoke(gan_train, ["--resume", str(out), "--steps", "12"])
    assert resumed.exit_code == 0, resumed.output
    assert "trained 4 steps" in resumed.output  # from step_0000008.pt to 12
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 12


def test_resume_refuses_to_change_the_model_and_a_finished_run(tmp_path):
    out = str(tmp_path / "run")
    assert run_train("--steps", "4", "--out", out).exit_code == 0
    changed = CliRunner().invoke(gan_train, ["--resume", out, "--lr", "0.1", "--steps", "8"])
    assert changed.exit_code == 2 and "cannot change --lr when resuming" in changed.output
    finished = CliRunner().invoke(gan_train, ["--resume", out])
    assert finished.exit_code == 2 and "already has 4 steps" in finished.output
    again = CliRunner().invoke(gan_train, [*TINY_RUN, "--steps", "4", "--out", out])
    assert again.exit_code == 2 and "already holds a trained run" in again.output


def test_garbage_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "checkpoints" / "last.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00garbage" * 10)
    result = CliRunner().invoke(gan_train, ["--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a readable onnxgan checkpoint" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(gan_train, ["--model", "mlp-bn", "--dry-run", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.output)
    assert resolved["model"]["d_hidden"] == [512, 256] and resolved["model"]["image_shape"] == [1, 28, 28]
    assert resolved["train"]["batch_size"] == 128 and not (tmp_path / "r").exists()


def gan_train_process(*args: str, cwd: Path) -> subprocess.Popen:
    script = Path(sys.executable).parent / "gan-train"
    return subprocess.Popen([str(script), *TINY_RUN, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=as_from_a_terminal)


@pytest.mark.slow  # 15-50 s each on 2 busy cores
# SIGHUP: the terminal closed; it used to kill the run, before its first checkpoint too, leaving nothing to resume.
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_ctrl_c_or_a_closed_terminal_saves_a_checkpoint(tmp_path, signum, code):
    process = gan_train_process("--steps", "1000000", "--log-every", "10", "--ckpt-every", "1000000", "--out", "run",
                                cwd=tmp_path)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while not (metrics.exists() and metrics.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "interrupted at step" in stderr and "Traceback" not in stderr
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] >= 10
    resumed = gan_train_process("--resume", "run", "--steps", str(state["step"] + 3), cwd=tmp_path)
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == state["step"] + 3


def test_module_entry_point_runs_like_the_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "onnxgan.train", "--model", "nope"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "error"})
    assert result.returncode == 2 and result.stderr.strip() == (
        "gan-train: error: unknown model 'nope'; choose one of: mlp, mlp-bn, dcgan, dcgan-upsample, dcgan-fc")


@pytest.mark.slow  # 15-50 s each on 2 busy cores
def test_compile_and_bf16_autocast_train_on_cpu(tmp_path):
    """The CPU twin of the GPU fast path: torch.compile and bf16 autocast run the same loop."""
    result = run_train("--steps", "3", "--compile", "--amp", "bf16", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 3 and not any(k.startswith("_orig_mod") for k in state["G"])
    assert all(torch.isfinite(t).all() for t in state["G"].values())


def test_amp_auto_resolves_by_hardware_and_the_run_records_what_ran(tmp_path, monkeypatch):
    """--amp auto is bf16 exactly on CPUs with native bf16, never on CUDA; explicit values pass through;
    config.json records the resolved value."""
    for native in (True, False):
        monkeypatch.setattr(trainer_module, "native_bf16_cpu", lambda native=native: native)
        assert trainer_module.resolve_amp("auto", torch.device("cpu")) == ("bf16" if native else "none")
        assert trainer_module.resolve_amp("auto", torch.device("cuda")) == "none"
        assert [trainer_module.resolve_amp(name, torch.device("cpu")) for name in ("none", "bf16")] == ["none", "bf16"]
    monkeypatch.setattr(trainer_module, "native_bf16_cpu", lambda: True)
    result = run_train("--steps", "2", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "bf16 autocast" in result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["amp"] == "bf16"


def test_cuda_graph_auto_captures_only_where_it_can_and_the_run_records_what_ran(tmp_path):
    """auto is on for one CUDA process without --compile, extra D steps or penalties, off elsewhere and
    never an error; on refuses each obstacle in one line; off is off. Resolution needs no GPU."""
    cuda, cpu, one, two = torch.device("cuda"), torch.device("cpu"), World(), World(rank=0, size=2)
    blocked = [(TrainConfig(), cpu, one), (TrainConfig(), cuda, two), (TrainConfig(compile=True), cuda, one),
               (TrainConfig(d_steps=2), cuda, one), (TrainConfig(loss="wgan-gp"), cuda, one),
               (TrainConfig(r1=1.0), cuda, one), (TrainConfig(loss="rpgan", gamma=0.1), cuda, one)]
    assert trainer_module.resolve_cuda_graph(TrainConfig(), cuda, one)
    assert not trainer_module.resolve_cuda_graph(TrainConfig(cuda_graph="off"), cuda, one)
    for config, device, world in blocked:
        assert not trainer_module.resolve_cuda_graph(config, device, world)
        with pytest.raises(UserError, match="^--cuda-graph "):
            trainer_module.resolve_cuda_graph(dataclasses.replace(config, cuda_graph="on"), device, world)
    result = run_train("--steps", "2", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0 and "CUDA graph" not in result.output, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["cuda_graph"] is False


def test_checkpoints_from_before_cuda_graph_auto_still_load():
    """0.1 wrote cuda_graph as a bool: True is on, False is off (not auto, which would change the run)."""
    for old, new in ((True, "on"), (False, "off")):
        assert TrainConfig.from_dict({**TrainConfig().to_dict(), "cuda_graph": old}).cuda_graph == new


def test_quality_scores_best_checkpoint_curves_and_report(tmp_path):
    out = tmp_path / "run"
    result = run_train("--steps", "6", "--eval-every", "3", "--eval-samples", "200", "--out", str(out),
                       "--model", "mlp", "--cond")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in rows if "fid" in r]
    assert [r["step"] for r in scored] == [3, 6]
    assert all(r["fid"] > r["fid_floor"] > 0 and 0 <= r["conditional_accuracy"] <= 1 for r in scored)
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert best["best_fid"] == min(r["fid"] for r in scored) and best["step"] in (3, 6)
    assert (out / "curves.png").stat().st_size > 0
    assert "<img" in (out / "report.html").read_text()


def test_every_option_default_equals_its_config_field():
    """Each default is written once, in the dataclasses; the click options read it from there."""
    from onnxgan.train.cli import MODEL_OPTIONS, TRAIN_OPTIONS
    from onnxgan.train.config import ModelConfig, TrainConfig

    params = {p.name: p for p in gan_train.params}
    assert set(TRAIN_OPTIONS) <= params.keys()
    for name in TRAIN_OPTIONS:
        default, field_default = params[name].default, getattr(TrainConfig(), name)
        if isinstance(field_default, tuple):  # given as "a,b" on the command line
            default = tuple(part for part in default.split(",") if part)
        assert default == field_default, name
    for option, field in MODEL_OPTIONS.items():
        if option in ("cond", "g_hidden", "d_hidden"):  # auto, and the model's widths when empty
            continue
        assert params[option].default == getattr(ModelConfig(), field), option
    assert params["g_hidden"].default == "" and ModelConfig().g_hidden == ()


def test_resume_refuses_data_that_shrank_below_the_checkpoints_place(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npy"
    np.save(data, rng.integers(0, 256, (64, 28, 28), dtype=np.uint8))  # 4 batches of 16 an epoch
    assert run_train("--data", str(data), "--steps", "3", "--out", str(tmp_path / "run")).exit_code == 0
    np.save(data, rng.integers(0, 256, (32, 28, 28), dtype=np.uint8))  # now 2: the checkpoint stopped at batch 3
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    result = CliRunner().invoke(gan_train, ["--resume", str(tmp_path / "run"), "--steps", "6"])
    assert result.exit_code == 2 and "has only 2 batches per epoch" in result.output, result.output
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_channels_last_conv_models_match_the_default_layout():
    """The CPU fast path for conv models (channels-last G and D, as GANTrainer sets them up) against the
    plain layout: the same images, scores and gradients within float rounding. (One Adam step is no
    judge: its first update is lr * sign(grad), which flips on gradients that are only rounding.)"""
    from onnxgan.train.config import ModelConfig, TrainConfig
    from onnxgan.train.trainer import GANTrainer

    config = ModelConfig(name="dcgan", g_hidden=(16, 8), d_hidden=(8, 16)).resolved()
    torch.manual_seed(0)
    trainer = GANTrainer(config, TrainConfig(batch_size=8, amp="none"), torch.device("cpu"))
    assert trainer.memory_format == torch.channels_last
    assert any(not p.is_contiguous() for p in trainer.D.parameters())  # really channels-last
    plain_G, plain_D = (copy.deepcopy(m).to(memory_format=torch.contiguous_format) for m in (trainer.G, trainer.D))
    z = torch.randn(8, config.latent_dim, generator=torch.Generator().manual_seed(1))
    results = []
    for G, D in ((trainer.G, trainer.D), (plain_G, plain_D)):
        D.eval()  # no dropout: rand_like fills a channels-last mask in another order (as random, not equal)
        images = G(z)  # (8, 1, 28, 28), BatchNorm on batch statistics
        scores = D(images)  # (8,)
        grads = torch.autograd.grad(scores.sum(), list(G.parameters()))
        results.append((images, scores, grads))
    (images, scores, grads), (plain_images, plain_scores, plain_grads) = results
    torch.testing.assert_close(images, plain_images, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scores, plain_scores, rtol=1e-5, atol=1e-5)
    for grad, plain in zip(grads, plain_grads):
        torch.testing.assert_close(grad, plain, rtol=1e-4, atol=1e-5)


def test_collapse_warnings_wait_for_a_trend_or_the_run_end():
    """A run's first scores are low by nature: before the end, a rare class warns when the rarest class
    stops improving and a low recall when it falls under half its best (a wobble of an undertrained G is
    no collapse); the run's last score warns on any low figure."""
    from onnxgan.train.loop import QualityScorer

    def result(recall: float, rarest: float) -> dict:
        histogram = [rarest] + [(1 - rarest) / 9] * 9
        return {"fid": 50.0, "fid_floor": 2.3, "kid": 0.1, "precision": 0.5, "recall": recall,
                "class_histogram": histogram, "rarest_class_share": rarest, "rarest_class": 0}

    class Scripted:
        def __init__(self, results):
            self.results = iter(results)

        def evaluate(self, pixels, requested_labels=None, seed=0):
            return next(self.results)

    class StillG:
        def images(self, z, labels):
            return np.zeros((len(z), 1, 28, 28), np.float32)

    script = [(result(0.05, 0.02), False), (result(0.15, 0.03), False), (result(0.12, 0.03), False),
              (result(0.12, 0.01), False), (result(0.30, 0.09), False), (result(0.14, 0.09), False),
              (result(0.10, 0.02), True)]
    scorer = QualityScorer(Scripted([r for r, _ in script]), torch.zeros(4, 8), None)
    warned = [len(scorer.score(StillG(), final=final)["warnings"]) for _, final in script]
    # 0.12 after 0.15: a wobble; a class at 1% that fell: one warning; recall 0.14 under half of 0.30: one;
    # the last score: recall under 0.2 (a class at exactly 2% is not under it)
    assert warned == [0, 0, 0, 1, 0, 1, 1]
    first_alone = QualityScorer(Scripted([result(0.05, 0.001)]), torch.zeros(4, 8), None)
    assert len(first_alone.score(StillG(), final=True)["warnings"]) == 2  # a one-score run still hears it


def test_the_default_recipes_choices_live_in_config():
    """train/config.py decides the choices that are no field's default; the loop and the trainer apply them."""
    from onnxgan.train import config
    from onnxgan.train.loop import total_steps

    assert total_steps(config.TrainConfig(), steps_per_epoch=468) == config.DEFAULT_STEPS
    assert [config.conditional_by_default(None, True), config.conditional_by_default(None, False),
            config.conditional_by_default(False, True), config.conditional_by_default(True, False)] == [
        True, False, False, True]
    assert [config.auto_amp(device, native) for device in ("cpu", "cuda") for native in (True, False)] == [
        "bf16", "none", "none", "none"]
    assert config.cuda_graph_obstacle(config.TrainConfig(), "cuda", distributed=False) is None
    assert "--d-steps 1" in config.cuda_graph_obstacle(config.TrainConfig(d_steps=2), "cuda", distributed=False)
