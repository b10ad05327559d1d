"""gan-train under hostile conditions: SIGKILL at random moments (some mid-checkpoint-write), a full disk,
a read-only run folder, and NaN/Inf in a loss or a weight (README "What happens if...").

The kill test drives the installed entry point as a real process; ONNXGAN_TEST_SLOW_CHECKPOINT_WRITE (a
test-only hook in train/checkpoint.py) holds each checkpoint between its temp file and the rename so
that a kill can land there. The divergence test patches the trainer in-process.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from onnxgan.errors import EXIT_DIVERGED, EXIT_USAGE
from onnxgan.train.checkpoint import load_checkpoint, resolve_checkpoint
from onnxgan.train.cli import main as gan_train
from onnxgan.train.trainer import GANTrainer

from kit import TINY_RUN, image_data

GAN_TRAIN = str(Path(sys.executable).parent / "gan-train")
CKPT_EVERY = 5
TINY = [*TINY_RUN, "--ckpt-every", str(CKPT_EVERY), "--sample-every", "1000", "--log-every", "1", "--device", "cpu"]
STEPS = 80
KILLS = 6
SLOW_WRITE_S = 0.3


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return image_data(tmp_path / "data.npy", count=128)  # (128, 8, 8)


def env(**extra: str) -> dict[str, str]:
    """One intra-op thread everywhere, so that the runs compared bit for bit do the same arithmetic."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def saved(run: Path) -> list[Path]:
    """The run's checkpoints (last.pt, step_N.pt) as a user would find them."""
    return list((run / "checkpoints").glob("*.pt")) if (run / "checkpoints").is_dir() else []


def train_command(run: Path, data: Path, steps: int) -> list[str]:
    """Resume the run folder as a user would (last.pt, or the newest step_N.pt when a kill came before
    last.pt was first renamed into place); a new run while no checkpoint exists."""
    if saved(run):
        return [GAN_TRAIN, "--resume", str(run), "--steps", str(steps)]
    return [GAN_TRAIN, "--data", str(data), "--out", str(run), "--steps", str(steps), *TINY]


def metric_steps(run: Path) -> list[int]:
    """Steps of the complete loss rows of metrics.jsonl (a kill may leave half a line: skipped)."""
    path = run / "metrics.jsonl"
    steps = []
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(json.JSONDecodeError):
            row = json.loads(line)
            if "d_loss" in row:
                steps.append(row["step"])
    return steps


def flatten(value, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's G, D, G_ema, optimiser and RNG states: name -> tensor."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    return {name: t for k, v in items for name, t in flatten(v, f"{prefix}.{k}").items()}


def assert_same_training_state(a: dict, b: dict) -> None:
    for key in ("step", "epoch", "batch_in_epoch"):
        assert a[key] == b[key], key
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "rng"):
        ta, tb = flatten(a[key], key), flatten(b[key], key)
        assert ta.keys() == tb.keys(), key
        for name in ta:
            assert torch.equal(ta[name], tb[name]), f"{name} differs from the uninterrupted run"
    assert a["opt_G"]["param_groups"] == b["opt_G"]["param_groups"]


def temp_files(folder: Path) -> set[str]:
    """atomic_write's temp files (``.NAME.*.tmp``) in ``folder``."""
    return {name for name in os.listdir(folder) if name.endswith(".tmp")} if folder.is_dir() else set()


def wait(process: subprocess.Popen, ready, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"gan-train ended (code {process.returncode}) or stalled before {what}")
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path, data):
    """Rounds alternate: a kill inside the k-th checkpoint write of the round (k = 2: last.pt at the first
    checkpoint; 3, 4: the next checkpoint's step_N.pt / last.pt), and a kill at a random moment once
    training is under way. After each: every checkpoint present loads, and the one `--resume RUN_DIR` takes
    never goes back and is at most one checkpoint interval behind the last step logged."""
    rng = random.Random(8)
    reference_run, run = tmp_path / "reference", tmp_path / "run"
    reference = subprocess.Popen(train_command(reference_run, data, STEPS), env=env(), cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoints, metrics = run / "checkpoints", run / "metrics.jsonl"
    writes_to_kill_in = rng.sample([2, 3, 4], 3)
    saved_step, mid_write, mid_last_write = 0, 0, 0
    for round_ in range(KILLS):
        stale = temp_files(checkpoints)  # left by the previous kill; the run removes them at start
        start = time.time()
        process = subprocess.Popen(train_command(run, data, STEPS), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env(ONNXGAN_TEST_SLOW_CHECKPOINT_WRITE=str(SLOW_WRITE_S)))
        if round_ % 2 == 0:  # inside a checkpoint write: after its temp file appears, before the rename
            seen: set[str] = set()

            def kth_write_began(k=writes_to_kill_in[round_ // 2]):
                seen.update(temp_files(checkpoints) - stale)
                return len(seen) >= k

            wait(process, kth_write_began, "the checkpoint write to kill in")
            time.sleep(rng.uniform(0.0, SLOW_WRITE_S * 0.8))
        else:  # anywhere once this process trains: a step, a log line, a checkpoint write
            wait(process, lambda: metrics.exists() and metrics.stat().st_mtime >= start and
                 max(metric_steps(run), default=0) > saved_step, "its first step")
            time.sleep(rng.uniform(0.0, 1.0))
        if process.poll() is not None:
            pytest.fail(f"round {round_}: gan-train ended (code {process.returncode}) before the kill")
        in_write = temp_files(checkpoints) - stale
        mid_write += bool(in_write)
        mid_last_write += any(name.startswith(".last.pt.") for name in in_write)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

        reached = max(metric_steps(run), default=0)  # steps this process logged (log-every 1)
        for path in sorted(checkpoints.glob("*.pt")) if checkpoints.is_dir() else []:
            load_checkpoint(path)  # never half-written: a UserError here fails the test
        # What --resume RUN_DIR takes: never behind the previous round's, at most one interval behind.
        step = load_checkpoint(resolve_checkpoint(run))["step"] if saved(run) else 0
        assert step >= saved_step, f"round {round_}: the checkpoint went back from step {saved_step} to {step}"
        assert reached - step <= CKPT_EVERY, f"round {round_}: reached step {reached}, the checkpoint has {step}"
        saved_step = step

    final = subprocess.run(train_command(run, data, STEPS), cwd=tmp_path, env=env(), capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    assert reference.wait(timeout=120) == 0, reference.stderr.read()
    reference.stderr.close()
    assert mid_write >= 3 and mid_last_write >= 1 and saved_step >= 2 * CKPT_EVERY, (mid_write, mid_last_write,
                                                                                     saved_step)
    assert not list(run.rglob("*.tmp")), "temp files left behind after a clean finish"
    assert metric_steps(run) == list(range(1, STEPS + 1)), "resume must drop the rows logged after its checkpoint"
    assert_same_training_state(load_checkpoint(run / "checkpoints" / "last.pt"),
                               load_checkpoint(reference_run / "checkpoints" / "last.pt"))


# -- full disk, read-only folder ---------------------------------------------------------------------


@pytest.fixture
def trained_run(tmp_path, data) -> Path:
    """A run with last.pt at step CKPT_EVERY, trained in-process (no process start-up to pay)."""
    run = tmp_path / "run"
    result = CliRunner().invoke(gan_train, ["--data", str(data), "--out", str(run), "--steps", str(CKPT_EVERY),
                                            *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run


def resume_failing(run: Path, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([GAN_TRAIN, "--resume", str(run), "--steps", str(3 * CKPT_EVERY)], cwd=run.parent,
                          env=env(), capture_output=True, text=True, timeout=120, preexec_fn=preexec)


def assert_one_line_exit_2_and_checkpoint_intact(result, run: Path, before: bytes, words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr and len([l for l in lines if "error" in l]) == 1, result.stderr
    assert lines[-1].startswith("gan-train: error: ") and words in lines[-1], lines[-1]
    last = run / "checkpoints" / "last.pt"
    assert last.read_bytes() == before, "the previous checkpoint changed"
    assert load_checkpoint(last)["step"] == CKPT_EVERY
    assert not list(run.rglob("*.tmp")), "a temp file was left behind"


def test_file_size_limit_is_one_line_and_keeps_the_previous_checkpoint(trained_run):
    """A full disk as RLIMIT_FSIZE (no privileges needed): checkpoints (~100 kB) no longer fit, the small
    files do; with SIGXFSZ ignored, the write fails with EFBIG like ENOSPC."""
    before = (trained_run / "checkpoints" / "last.pt").read_bytes()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, resource.RLIM_INFINITY))

    result = resume_failing(trained_run, limit)
    assert_one_line_exit_2_and_checkpoint_intact(result, trained_run, before, "cannot write")


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A fresh tmpfs at ``folder`` (root with CAP_SYS_ADMIN only; otherwise the test is skipped)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"mount is not permitted here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, trained_run):
    """A real ENOSPC: the run on a 2 MB tmpfs, the free space then filled up."""
    with tmpfs(tmp_path / "disk", "2m") as disk:
        run = disk / "run"
        shutil.copytree(trained_run, run)
        before = (run / "checkpoints" / "last.pt").read_bytes()
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        filler = disk / "filler"
        os.truncate(filler, filler.stat().st_size - 48 * 1024)  # room for config and metrics, not a checkpoint
        result = resume_failing(run)
        assert_one_line_exit_2_and_checkpoint_intact(result, run, before, "No space left on device")


def test_read_only_run_folder_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, trained_run):
    """Root ignores permission bits, so as root the folder is a tmpfs remounted read-only; otherwise chmod."""
    if os.geteuid() != 0:
        run = trained_run
        before = (run / "checkpoints" / "last.pt").read_bytes()
        folders = [run, *[p for p in run.rglob("*") if p.is_dir()]]
        for folder in folders:
            folder.chmod(0o555)
        try:
            result = resume_failing(run)
        finally:
            for folder in folders:
                folder.chmod(0o755)
        assert_one_line_exit_2_and_checkpoint_intact(result, run, before, "cannot write")
        return
    with tmpfs(tmp_path / "disk", "4m") as disk:
        run = disk / "run"
        shutil.copytree(trained_run, run)
        before = (run / "checkpoints" / "last.pt").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = resume_failing(run)
        assert_one_line_exit_2_and_checkpoint_intact(result, run, before, "Read-only file system")


# -- divergence --------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["weight", "loss"])
def test_nan_or_inf_stops_with_one_line_naming_the_step_and_exit_3(tmp_path, data, monkeypatch, where):
    bad_step = 8  # checkpoints at 5 (every CKPT_EVERY): the last good one
    step, read_stats = GANTrainer.step, GANTrainer.read_stats
    done = [0]  # steps taken so far

    def poisoned_step(self, batches, at):
        step(self, batches, at)
        done[0] = at + 1
        if where == "weight" and done[0] == bad_step:
            with torch.no_grad():
                next(self.G.parameters()).view(-1)[0] = float("nan")

    def poisoned_stats(self):
        stats = read_stats(self)
        return {**stats, "g_loss": float("inf")} if where == "loss" and done[0] == bad_step else stats

    monkeypatch.setattr(GANTrainer, "step", poisoned_step)
    monkeypatch.setattr(GANTrainer, "read_stats", poisoned_stats)
    run = tmp_path / "run"
    result = CliRunner().invoke(gan_train, ["--data", str(data), "--out", str(run), "--steps", "20", *TINY])
    assert result.exit_code == EXIT_DIVERGED, result.output
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert lines == [result.stderr.strip().splitlines()[-1]], result.stderr
    assert lines[0].startswith("gan-train: error: training diverged at step 8 "), lines
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == CKPT_EVERY
    assert all(torch.isfinite(t).all() for t in flatten(last["G"]).values())
    assert not (run / "checkpoints" / "step_0000010.pt").exists()
