"""The training loop: one D step then one G step per batch, non-saturating loss on logits.

The whole data set sits on the training device as uint8; each epoch is a permutation drawn from the
seed and the epoch number, so a checkpoint needs only (epoch, batch_in_epoch) to find its place.
Nothing reads a tensor back to the host between log points, so a GPU never waits on Python.
Under torchrun each rank takes every world-size-th batch of that permutation, G and D are wrapped in
DistributedDataParallel, and only rank 0 writes files.
"""
from __future__ import annotations

import json
import math
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from onnxgan import __version__
from onnxgan.errors import EXIT_DIVERGED, EXIT_INTERRUPTED, CommandError, UserError
from onnxgan.files import atomic_write
from onnxgan.images import grid, save_png, to_uint8

from .checkpoint import save_checkpoint
from .config import ModelConfig, TrainConfig
from .data import ImageData
from .distributed import World, join_world, leave_world
from .models import build_models

DEFAULT_STEPS = 3000
GRID_SIZE = 64  # 8 x 8 digits in each sample grid


class TrainingStopped(CommandError):
    """Training ended early (interrupt or divergence); ``exit_code`` says which, the message says why."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Position:
    """Where training is: optimiser steps done and the next batch's place in the epoch order."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to PyTorch here; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def total_steps(train_config: TrainConfig, steps_per_epoch: int) -> int:
    if train_config.steps:
        return train_config.steps
    if train_config.epochs:
        return train_config.epochs * steps_per_epoch
    return DEFAULT_STEPS


def epoch_order(seed: int, epoch: int, count: int, device: torch.device) -> torch.Tensor:
    """The permutation of the data for one epoch: int64 (count,), a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return torch.randperm(count, generator=generator).to(device)


class GANTrainer:
    """G, D, their Adam optimisers and the running statistics between log points."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, device: torch.device,
                 world: World = World()):
        self.device, self.world = device, world
        self.latent_dim = model_config.latent_dim
        G, D = build_models(model_config)
        if train_config.sync_bn:
            if device.type != "cuda" or not world.distributed:
                raise UserError("--sync-bn needs several CUDA processes (torchrun on GPUs); drop it here")
            G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
        # Plain modules hold the state and serve eval and the G step's pass through D; the DDP
        # wrappers (the same modules when alone) average gradients across ranks in backward.
        self.G, self.D = G.to(device), D.to(device)
        self.G_step, self.D_step = (self.G, self.D) if not world.distributed else (
            DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
            for m in (self.G, self.D))
        betas = (train_config.beta1, train_config.beta2)
        # fused: one kernel per optimiser instead of ~10 per parameter tensor (Adam was 28% of a CPU step).
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=train_config.lr, betas=betas, fused=True)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=train_config.lr, betas=betas, fused=True)
        self._sums = torch.zeros(4, device=device)  # d_loss, g_loss, D(x), D(G(z)) summed since last read
        self._count = 0

    def step(self, real: torch.Tensor) -> None:
        """One D step on (real, G(z)) then one G step on the same G(z). real: (N, C, H, W) in [-1, 1]."""
        n = real.shape[0]
        z = torch.randn(n, self.latent_dim, device=self.device)  # (N, latent_dim)
        fake = self.G_step(z)  # (N, C, H, W)

        # One D pass over real and fake together: one larger GEMM per layer instead of two.
        real_logits, fake_logits = self.D_step(torch.cat([real, fake.detach()])).split(n)  # (N,), (N,)
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        self.opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_D.step()

        # Non-saturating G loss: maximise log D(G(z)) through the updated D. D's own weight
        # gradients are not needed here, so autograd skips them (about 8% of the step's FLOPs); the
        # plain D (not its DDP wrapper) is used because no gradient of D is averaged in this step.
        self.D.requires_grad_(False)
        g_logits = self.D(fake)
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.D.requires_grad_(True)
        self.opt_G.step()

        with torch.no_grad():
            self._sums += torch.stack([d_loss, g_loss, torch.sigmoid(real_logits).mean(),
                                       torch.sigmoid(fake_logits).mean()])
        self._count += 1

    def read_stats(self) -> dict[str, float]:
        """Means since the last read (over all ranks); the only host sync in the loop."""
        d_loss, g_loss, d_real, d_fake = self.world.mean_(self._sums / max(self._count, 1)).tolist()
        self._sums.zero_()
        self._count = 0
        return {"d_loss": d_loss, "g_loss": g_loss, "D(x)": d_real, "D(G(z))": d_fake}

    @torch.no_grad()
    def images(self, z: torch.Tensor) -> np.ndarray:
        """G's eval-mode images for z (N, latent_dim): float32 numpy (N, C, H, W)."""
        self.G.eval()
        try:
            return self.G(z).float().cpu().numpy()
        finally:
            self.G.train()

    def state(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict()}

    def load_state(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])


def rank_seed(seed: int, rank: int) -> int:
    """Rank r > 0 draws its z and dropout from its own stream, derived from the global seed."""
    return (seed * 1_000_033 + 7919 * rank) % 2**63


def rng_state() -> dict:
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], int | None]]:
    """Turn SIGINT/SIGTERM into a flag read between steps, so a checkpoint is never half a step.

    Yields a function returning the signal number received, or None. A second Ctrl-C while the first
    is being handled falls through to Python's default (KeyboardInterrupt).
    """
    received: list[int] = []

    def handler(signum, frame):
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class RunFiles:
    """The run directory: config.json, metrics.jsonl, samples/, checkpoints/."""

    def __init__(self, root: Path, writes: bool = True):
        self.root, self.writes = root, writes  # writes: False on ranks other than 0
        self.metrics = root / "metrics.jsonl"
        self.samples = root / "samples"
        self.checkpoints = root / "checkpoints"

    def write_config(self, record: dict) -> None:
        if not self.writes:
            return
        with atomic_write(self.root / "config.json") as f:
            f.write(json.dumps(record, indent=2).encode())

    def trim_metrics(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint (and any half-written last line)."""
        if not self.writes or not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", math.inf) <= step:
                kept.append(line + "\n")
        with atomic_write(self.metrics) as f:
            f.write("".join(kept).encode())

    def append_metrics(self, row: dict) -> None:
        if not self.writes:
            return
        with open(self.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")

    def save_grid(self, step: int, images: np.ndarray) -> None:
        """images: float (N, C, H, W) in [-1, 1] -> samples/step_NNNNNNN.png, 2x upscaled."""
        if self.writes:
            save_png(grid(to_uint8(images), scale=2), self.samples / f"step_{step:07d}.png")

    def save_checkpoint(self, state: dict, *names: str) -> None:
        if self.writes:
            for name in names:
                save_checkpoint(self.checkpoints / name, state)


def train(model_config: ModelConfig, train_config: TrainConfig, data: ImageData, run_dir: Path,
          resume_state: dict | None = None, progress: bool | None = None) -> Path:
    """Train to ``total_steps`` and return the path of ``checkpoints/last.pt``.

    Raises ``TrainingStopped`` after saving a checkpoint on SIGINT/SIGTERM, or without saving when a
    loss turns NaN/Inf (the last good checkpoint stays). ``progress``: None = a bar on a terminal and
    plain log lines otherwise. Under torchrun, call it on every rank.
    """
    world, device = join_world(resolve_device(train_config.device))
    try:
        return _train(model_config, train_config, data, RunFiles(run_dir, writes=world.is_main),
                      resume_state, progress, world, device)
    finally:
        leave_world(world)


def _train(model_config: ModelConfig, train_config: TrainConfig, data: ImageData, files: RunFiles,
           resume_state: dict | None, progress: bool | None, world: World, device: torch.device) -> Path:
    count, batch_size = len(data.images), train_config.batch_size
    steps_per_epoch = count // (batch_size * world.size)  # every rank takes its own batch of each step
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {batch_size} x {world.size} processes is larger than the data set "
                        f"({count} images)")
    last_step = total_steps(train_config, steps_per_epoch)

    torch.manual_seed(train_config.seed)  # the same initial weights on every rank
    trainer = GANTrainer(model_config, train_config, device, world)
    if world.rank:
        torch.manual_seed(rank_seed(train_config.seed, world.rank))
    position = Position()
    if resume_state is not None:
        trainer.load_state(resume_state)
        position = _resume_position(resume_state, train_config, world)
        files.trim_metrics(position.step)
    if position.step >= last_step:
        raise UserError(f"this run already has {position.step} steps; pass a larger --steps to train on")
    files.write_config({"model": model_config.to_dict(), "train": train_config.to_dict(),
                        "package_version": __version__, "torch_version": torch.__version__,
                        "device": str(device), "world_size": world.size,
                        "data": {"source": data.source, "images": count, "image_shape": list(data.image_shape)},
                        "steps_per_epoch": steps_per_epoch, "total_steps": last_step})

    images = torch.from_numpy(data.images).to(device)  # uint8 (N, C, H, W), resident on the device
    fixed_z = torch.randn(GRID_SIZE, model_config.latent_dim,
                          generator=torch.Generator().manual_seed(train_config.seed)).to(device)

    def checkpoint(*names: str) -> None:
        rng = world.gather(rng_state())  # a collective: every rank calls checkpoint() at the same step
        files.save_checkpoint({"model_config": model_config.to_dict(), "train_config": train_config.to_dict(),
                               **trainer.state(), "step": position.step, "epoch": position.epoch,
                               "batch_in_epoch": position.batch_in_epoch, "rng": rng}, *names)

    last = files.checkpoints / "last.pt"
    bar = _Progress(progress if world.is_main else False, position.step, last_step)
    start, start_step = time.perf_counter(), position.step
    interval_start, interval_step = start, position.step
    order = epoch_order(train_config.seed, position.epoch, count, device)
    with stop_on_signals() as received:
        while position.step < last_step:
            begin = (position.batch_in_epoch * world.size + world.rank) * batch_size
            trainer.step(images[order[begin : begin + batch_size]].float().div_(127.5).sub_(1.0))  # -> [-1, 1]
            position.step += 1
            position.batch_in_epoch += 1
            if position.batch_in_epoch == steps_per_epoch:
                position.epoch, position.batch_in_epoch = position.epoch + 1, 0
                order = epoch_order(train_config.seed, position.epoch, count, device)

            step, done = position.step, position.step == last_step
            log_point = step % train_config.log_every == 0 or done
            if log_point:
                now = time.perf_counter()
                stats = trainer.read_stats()
                rate = (step - interval_step) / max(now - interval_start, 1e-9)
                interval_start, interval_step = now, step
                if not all(math.isfinite(v) for v in stats.values()):
                    bar.close()
                    raise TrainingStopped(
                        f"training diverged at step {step} ({_format_stats(stats)}); the last good "
                        f"checkpoint is {last if last.exists() else 'none (no checkpoint was written yet)'}",
                        EXIT_DIVERGED)
                files.append_metrics({"step": step, "epoch": position.epoch, **stats,
                                      "steps_per_s": rate, "wall_time": now - start})
                bar.show(step, stats, rate)
            if step % train_config.sample_every == 0 or done:
                files.save_grid(step, trainer.images(fixed_z))
            if step % train_config.ckpt_every == 0:
                checkpoint(f"step_{step:07d}.pt", "last.pt")
            # Alone, a signal is honoured after the step it arrived in; under torchrun the ranks
            # agree at log points, so that all of them stop at the same step.
            if not done and (log_point or not world.distributed):
                signum = received()
                if world.any(signum is not None, device):
                    checkpoint("last.pt")
                    bar.close()
                    code = EXIT_INTERRUPTED if signum in (None, signal.SIGINT) else 128 + signum
                    raise TrainingStopped(f"interrupted at step {step}; saved {last} (resume with --resume "
                                          f"{files.root})", code)
        if last_step % train_config.ckpt_every:  # otherwise the loop's last iteration wrote it
            checkpoint("last.pt")
    bar.close()
    elapsed = time.perf_counter() - start
    if world.is_main:
        print(f"trained {last_step - start_step} steps in {elapsed:.1f} s "
              f"({(last_step - start_step) / max(elapsed, 1e-9):.1f} steps/s)", file=sys.stderr)
    return last


def _resume_position(state: dict, train_config: TrainConfig, world: World) -> Position:
    """Restore this rank's RNG and place; with another world size, restart at the next epoch."""
    saved_ranks = len(state["rng"])
    if saved_ranks == world.size:
        set_rng_state(state["rng"][world.rank])
        return Position(state["step"], state["epoch"], state["batch_in_epoch"])
    if world.is_main:
        print(f"resuming a {saved_ranks}-process checkpoint with {world.size} processes: weights and "
              "optimiser states carry over, the data order restarts at the next epoch and the random "
              "streams are re-derived from --seed and the step, so the run is not bit-identical to an "
              "uninterrupted one", file=sys.stderr)
    torch.manual_seed(rank_seed(train_config.seed + state["step"], world.rank))
    return Position(state["step"], state["epoch"] + 1, 0)


def _format_stats(stats: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in stats.items())


class _Progress:
    """A tqdm bar on a terminal; plain log lines elsewhere (CI logs, pipes)."""

    def __init__(self, enabled: bool | None, step: int, last_step: int):
        from tqdm import tqdm

        self.last_step = last_step
        self.interactive = sys.stderr.isatty() if enabled is None else enabled
        self.bar = tqdm(total=last_step, initial=step, unit="step", dynamic_ncols=True,
                        disable=not self.interactive, file=sys.stderr)

    def show(self, step: int, stats: dict[str, float], rate: float) -> None:
        if self.interactive:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(f"d_loss={stats['d_loss']:.3f} g_loss={stats['g_loss']:.3f}")
        else:
            eta = (self.last_step - step) / max(rate, 1e-9)
            print(f"step {step}/{self.last_step} {_format_stats(stats)} {rate:.1f} steps/s eta {eta:.0f} s",
                  file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
