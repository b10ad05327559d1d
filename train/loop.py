"""The training loop: --d-steps D steps then one G step, each on its own batch, with the loss --loss names;
log rows, sample grids, quality scores, checkpoints and the watch for a failed run (health.py) between steps.

The whole data set sits on the training device as uint8; each epoch is a permutation drawn from the
seed and the epoch number, so a checkpoint needs only (epoch, batch_in_epoch) to find its place.
Nothing reads a tensor back to the host between log points, so a GPU never waits on Python.
Under torchrun each rank takes every world-size-th batch of that permutation, G and D are wrapped in
DistributedDataParallel, and only rank 0 writes files.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from onnxgan import __version__
from onnxgan.errors import EXIT_DIVERGED, EXIT_FAILED_RUN, EXIT_INTERRUPTED, CommandError, UserError

from .config import DEFAULT_STEPS, ModelConfig, TrainConfig
from .data import ImageData
from .distributed import World, join_world, leave_world
from .health import RunHealth
from .run_files import RunFiles, stop_on_signals
from .trainer import GANTrainer

GRID_SIZE = 64  # 8 x 8 digits in each sample grid
COLLAPSE_FALL = 0.5  # a recall under half its best so far is a collapse, not a start
HEALTH_REFERENCE = 256  # real images the failed-run checks compare G's output with


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
    """--steps, or --epochs worth of G steps (each G step takes --d-steps batches), or the default."""
    if train_config.steps:
        return train_config.steps
    if train_config.epochs:
        return train_config.epochs * steps_per_epoch
    return DEFAULT_STEPS


def epoch_order(seed: int, epoch: int, count: int, device: torch.device) -> torch.Tensor:
    """The permutation of the data for one epoch: int64 (count,), a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return torch.randperm(count, generator=generator).to(device)


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


def train(model_config: ModelConfig, train_config: TrainConfig, data: ImageData, run_dir: Path,
          resume_state: dict | None = None, progress: bool | None = None) -> Path:
    """Train to ``total_steps`` and return the path of ``checkpoints/last.pt``.

    Raises ``TrainingStopped`` after saving a checkpoint on SIGINT/SIGTERM, without saving when a
    loss turns NaN/Inf (the last good checkpoint stays), and after the whole run (checkpoints and report
    written) when a failed state of health.py still holds at its end. ``progress``: None = a bar on a terminal and
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
    batches_per_epoch = count // (batch_size * world.size)  # every rank takes its own batch each time
    if batches_per_epoch == 0:
        raise UserError(f"--batch-size {batch_size} x {world.size} processes is larger than the data set "
                        f"({count} images)")
    last_step = total_steps(train_config, max(batches_per_epoch // train_config.d_steps, 1))

    torch.manual_seed(train_config.seed)  # the same initial weights on every rank
    trainer = GANTrainer(model_config, train_config, device, world)
    if world.rank:
        torch.manual_seed(rank_seed(train_config.seed, world.rank))
    position, best_fid = Position(), math.inf
    if resume_state is not None:
        trainer.load_state(resume_state)
        position = _resume_position(resume_state, train_config, world)
        if position.batch_in_epoch >= batches_per_epoch:  # the data shrank since the checkpoint
            raise UserError(f"the checkpoint stopped at batch {position.batch_in_epoch} of an epoch, but this data "
                            f"has only {batches_per_epoch} batches per epoch; resume with the data it was trained on")
        best_fid = resume_state.get("best_fid", math.inf)
    files.remove_stale_temp_files()  # a killed run's half-written checkpoints
    files.trim_metrics(position.step)  # rows after the checkpoint (all of them on a fresh start) go
    if position.step >= last_step:
        raise UserError(f"this run already has {position.step} steps; pass a larger --steps to train on")
    files.write_config({"model": model_config.to_dict(), "train": train_config.to_dict(),
                        "package_version": __version__, "torch_version": torch.__version__,
                        "device": str(device), "amp": trainer.amp, "cuda_graph": trainer.cuda_graph,
                        "world_size": world.size,
                        "data": {"source": data.source, "images": count, "image_shape": list(data.image_shape)},
                        "batches_per_epoch": batches_per_epoch, "total_steps": last_step})

    batches = DeviceBatches(data, model_config.num_classes > 0, train_config, world, device, position)
    fixed_z, fixed_labels = _fixed_latents(GRID_SIZE, model_config, train_config.seed, device)
    scorer = QualityScorer.for_run(model_config, train_config, data, device)
    health = _health_watch(train_config, data, files)

    def warn(step: int, warnings: list[str]) -> None:
        """Warnings go to the terminal, to metrics.jsonl and so to the top of report.html."""
        if warnings:
            files.append_metrics({"step": step, "epoch": position.epoch, "warnings": warnings})
            bar.note(step, None, warnings)

    def diverged(stats: str) -> TrainingStopped:
        warn(position.step, [f"training diverged: NaN/Inf in a loss or weight ({stats})"])
        files.append_metrics({"step": position.step, "run_failed": ["training diverged (NaN/Inf)"]})
        bar.close()
        files.save_report()
        return TrainingStopped(f"training diverged at step {position.step} (NaN/Inf in a loss or weight: {stats}); "
                               f"the last good checkpoint is {last if last.exists() else 'none (none written yet)'}",
                               EXIT_DIVERGED)

    def checkpoint(*names: str) -> None:
        if not trainer.weights_finite():  # never overwrite a good checkpoint with NaN weights
            raise diverged("weights")
        rng = world.gather(rng_state())  # a collective: every rank calls checkpoint() at the same step
        files.save_checkpoint({"model_config": model_config.to_dict(), "train_config": train_config.to_dict(),
                               **trainer.state(), "step": position.step, "epoch": position.epoch,
                               "batch_in_epoch": position.batch_in_epoch, "rng": rng, "best_fid": best_fid},
                              *names)

    if world.is_main:
        conditional = f"conditional on {model_config.num_classes} classes" if model_config.num_classes else "unconditional"
        print(f"training {model_config.name} ({conditional}) on {data.source} ({count} images, {world.size} process(es), "
              f"{device}{', bf16 autocast' if trainer.amp == 'bf16' else ''}"
              f"{', CUDA graph' if trainer.cuda_graph else ''}) -> {files.root}", file=sys.stderr)
    last = files.checkpoints / "last.pt"
    mode = "quiet" if not world.is_main else {None: "bar" if sys.stderr.isatty() else "lines",
                                                True: "bar", False: "lines"}[progress]
    bar = _Progress(mode, position.step, last_step)
    start, start_step, cpu_start = time.perf_counter(), position.step, time.process_time()
    interval_start, interval_step = start, position.step
    with stop_on_signals() as received:
        while position.step < last_step:
            trainer.step([batches.next() for _ in range(train_config.d_steps)], position.step)
            position.step += 1

            step, done = position.step, position.step == last_step
            bar.tick(step)
            log_point = step % train_config.log_every == 0 or done
            if log_point:
                now = time.perf_counter()
                stats = trainer.read_stats()
                rate = (step - interval_step) / max(now - interval_start, 1e-9)
                interval_start, interval_step = now, step
                if not (all(math.isfinite(v) for v in stats.values()) and trainer.weights_finite()):
                    raise diverged(_format_stats(stats))
                files.append_metrics({"step": step, "epoch": position.epoch, **stats, "steps_per_s": rate,
                                      "mean_steps_per_s": (step - start_step) / max(now - start, 1e-9),
                                      "wall_time": now - start,
                                      "cpu_time": time.process_time() - cpu_start})  # all threads, this process
                bar.show(step, stats, rate)
                warn(step, health.observe_losses(step, stats))
            if scorer is not None and (step % train_config.eval_every == 0 or done):
                scores = scorer.score(trainer, final=done)
                warned = {"warnings": scores["warnings"]} if scores["warnings"] else {}  # for the report's summary
                files.append_metrics({"step": step, "epoch": position.epoch, **scores["row"], **warned})
                bar.note(step, scores["summary"], scores["warnings"])
                if scores["row"]["fid"] < best_fid:
                    best_fid = scores["row"]["fid"]
                    checkpoint("best.pt")
            if step % train_config.sample_every == 0 or done:
                grid_images = trainer.images(fixed_z, fixed_labels)  # float (64, C, H, W) in [-1, 1]
                files.save_grid(step, grid_images)
                warn(step, health.observe_images(step, grid_images))
                if not done:  # at the end, save_report draws the curves with the report
                    files.save_curves()
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
    failures = health.failures()
    if failures:
        files.append_metrics({"step": last_step, "run_failed": failures})  # report.html opens with it
    files.save_report()
    elapsed = time.perf_counter() - start
    if world.is_main:
        print(f"trained {last_step - start_step} steps in {elapsed:.1f} s "
              f"({(last_step - start_step) / max(elapsed, 1e-9):.1f} steps/s)", file=sys.stderr)
    if failures:
        raise TrainingStopped(f"the run failed: {'; '.join(failures)}. Its checkpoints, grids and report are kept "
                              f"({files.root / 'report.html'})", EXIT_FAILED_RUN)
    return last


def _health_watch(train_config: TrainConfig, data: ImageData, files: RunFiles) -> RunHealth:
    """The failed-run checks, against real images drawn from the seed; on resume, the log rows kept from
    before the checkpoint are replayed (quietly) so that a streak in progress continues."""
    pick = np.random.default_rng(train_config.seed).permutation(len(data.images))[:HEALTH_REFERENCE]
    health = RunHealth.for_data(train_config.loss, data.images[np.sort(pick)].astype(np.float32) / 127.5 - 1.0)
    for row in files.read_metrics() if files.metrics.exists() else []:
        if all(isinstance(row.get(key), (int, float)) for key in ("step", "d_loss", "D(x)", "D(G(z))")):
            health.observe_losses(row["step"], row)
    return health


class DeviceBatches:
    """The data set resident on the device as uint8, and this rank's walk through each epoch's order.

    Batch b of an epoch on rank r is positions [(b * world + r) * B, ... + B) of the permutation drawn
    from (seed, epoch); ``position`` (shared with the loop and the checkpoint) records where it is.
    """

    def __init__(self, data: ImageData, with_labels: bool, train_config: TrainConfig, world: World,
                 device: torch.device, position: Position):
        if with_labels and data.labels is None:
            raise UserError(f"{data.source}: conditional training (--cond) needs labels, and this data has none")
        self.images = torch.from_numpy(data.images).to(device)  # uint8 (N, C, H, W)
        self.labels = torch.from_numpy(data.labels).to(device) if with_labels else None  # int64 (N,)
        self.seed, self.world, self.device, self.position = train_config.seed, world, device, position
        self.batch_size = train_config.batch_size
        self.per_epoch = len(data.images) // (self.batch_size * world.size)
        self.order = epoch_order(self.seed, position.epoch, len(data.images), device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real (B, C, H, W) float in [-1, 1], labels (B,) or None), advancing the position."""
        begin = (self.position.batch_in_epoch * self.world.size + self.world.rank) * self.batch_size
        index = self.order[begin : begin + self.batch_size]
        self.position.batch_in_epoch += 1
        if self.position.batch_in_epoch == self.per_epoch:
            self.position.epoch, self.position.batch_in_epoch = self.position.epoch + 1, 0
            self.order = epoch_order(self.seed, self.position.epoch, len(self.images), self.device)
        real = self.images[index].float().div_(127.5).sub_(1.0)
        return real, None if self.labels is None else self.labels[index]


def _fixed_latents(n: int, model_config: ModelConfig, seed: int, device: torch.device):
    """One z (and label cycle 0, 1, ..., classes - 1, 0, ...) per picture, fixed for the whole run."""
    z = torch.randn(n, model_config.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    labels = torch.arange(n, device=device) % model_config.num_classes if model_config.num_classes else None
    return z, labels


class QualityScorer:
    """Scores the EMA G every --eval-every steps with the evaluator scoring.py picks (the MNIST classifier
    on MNIST-shaped data, Inception features against the training data with --eval-real)."""

    def __init__(self, evaluator, z: torch.Tensor, labels: torch.Tensor | None):
        self.evaluator, self.z, self.labels = evaluator, z, labels
        self.previous: dict | None = None  # the last score of this process
        self.best_recall = 0.0  # the highest recall of this process's scores

    @classmethod
    def for_run(cls, model_config: ModelConfig, train_config: TrainConfig, data: ImageData, device: torch.device):
        from .scoring import quality_evaluator

        evaluator = quality_evaluator(model_config, train_config, data)
        if evaluator is None:
            return None
        z, labels = _fixed_latents(train_config.eval_samples, model_config, train_config.seed + 1, device)
        return cls(evaluator, z, labels)

    def score(self, trainer: GANTrainer, final: bool) -> dict:
        """The EMA G's figures, a summary line, and mode-collapse warnings. Recall and the rarest class
        climb from near 0 at the start of a run (the default recipe: recall 0.05 at step 1000, 0.79 at
        10000), so before the run's last score a rare class warns only when the rarest class's share did
        not grow since the previous score, and a low recall only when it fell under half its best: a
        collapse, not a start."""
        from onnxgan.images import to_uint8
        from onnxgan.quality.evaluator import MIN_CLASS_SHARE, MIN_RECALL, mode_collapse_warnings, summary

        pixels = to_uint8(trainer.images(self.z, self.labels))  # uint8 (N, H, W) or (N, H, W, 3)
        requested = None if self.labels is None else self.labels.cpu().numpy()
        result = self.evaluator.evaluate(pixels, requested_labels=requested, seed=0)  # one seed: cached work
        previous, self.previous = self.previous, result
        classes_improving = previous is None or result.get("rarest_class_share", 0.0) > previous.get(
            "rarest_class_share", 0.0)
        # Before the end, a low recall warns only once it has fallen to half its best: an undertrained G
        # has a low recall that wobbles (classes balanced, the digits right, not varied enough yet).
        collapsing = result["recall"] < COLLAPSE_FALL * self.best_recall
        self.best_recall = max(self.best_recall, result["recall"])
        warnings = mode_collapse_warnings(result, min_class_share=0.0 if classes_improving and not final else
                                          MIN_CLASS_SHARE, min_recall=MIN_RECALL if final or collapsing else 0.0)
        return {"row": result, "summary": summary(result), "warnings": warnings}


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
    """A tqdm bar on a terminal, plain log lines elsewhere (CI logs, pipes), nothing on ranks > 0."""

    def __init__(self, mode: str, step: int, last_step: int):
        from tqdm import tqdm

        self.mode, self.last_step, self.postfix = mode, last_step, ""
        self.bar = tqdm(total=last_step, initial=step, unit="step", dynamic_ncols=True,
                        disable=mode != "bar", file=sys.stderr)

    def tick(self, step: int) -> None:
        """Every step: the bar moves (tqdm redraws at most every 0.1 s); no tensor is read back here."""
        if self.mode == "bar":
            self.bar.update(step - self.bar.n)

    def show(self, step: int, stats: dict[str, float], rate: float) -> None:
        if self.mode == "bar":
            self.bar.set_postfix_str(f"d_loss={stats['d_loss']:.3f} g_loss={stats['g_loss']:.3f} {self.postfix}")
        elif self.mode == "lines":
            eta = (self.last_step - step) / max(rate, 1e-9)
            print(f"step {step}/{self.last_step} {_format_stats(stats)} {rate:.1f} steps/s eta {eta:.0f} s",
                  file=sys.stderr)

    def note(self, step: int, summary: str | None, warnings: list[str]) -> None:
        """An evaluation's summary joins the bar (or a line); warnings are always printed."""
        if summary is not None:
            self.postfix = summary
        if self.mode == "quiet":
            return
        lines = ([f"step {step}: {summary}"] if self.mode == "lines" and summary is not None else []) + [
            f"warning: step {step}: {w}" for w in warnings]
        for line in lines:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
