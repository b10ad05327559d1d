"""The run directory (config.json, metrics.jsonl, samples/, checkpoints/) and stopping on signals."""
from __future__ import annotations

import contextlib
import json
import math
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from onnxgan.files import atomic_write
from onnxgan.images import grid, save_png, to_uint8

from .checkpoint import save_checkpoint
from .report import read_metrics  # report.py imports matplotlib only when it draws


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

    def remove_stale_temp_files(self) -> None:
        """Delete the temp files (``.NAME.*.tmp``, atomic_write's) that a killed run left behind."""
        if not self.writes:
            return
        for folder in (self.root, self.checkpoints, self.samples):
            for temp in folder.glob(".*.tmp") if folder.is_dir() else ():
                with contextlib.suppress(OSError):
                    temp.unlink()

    def trim_metrics(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint (and any half-written last line)."""
        if not self.writes or not self.metrics.exists():
            return
        kept = [json.dumps(row) + "\n" for row in self.read_metrics() if row.get("step", math.inf) <= step]
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

    def read_metrics(self) -> list[dict]:
        """Every complete row of metrics.jsonl (a half-written last line, after a kill, is skipped)."""
        return read_metrics(self.metrics)

    def save_curves(self) -> None:
        """curves.png from metrics.jsonl: losses, D outputs and FID over steps."""
        if self.writes:
            from .report import plot_curves  # matplotlib is imported only when a picture is drawn

            plot_curves(self.read_metrics(), self.root / "curves.png")

    def save_report(self) -> None:
        """report.html: grids over time, curves, metrics, config; opens from disk with no server."""
        if self.writes:
            from .report import write_report

            write_report(self.root)  # also redraws curves.png from the final metrics

    def save_checkpoint(self, state: dict, *names: str) -> None:
        if self.writes:
            for name in names:
                save_checkpoint(self.checkpoints / name, state)
