"""The run directory (config.json, metrics.jsonl, samples/, checkpoints/), who may write it, and stopping
on signals.

A run folder belongs to one run: a new run needs a missing or empty folder, a resumed run writes only into
the folder it resumes (or a missing or empty one), and the process training holds RUN/.lock (the
house's folder lock, onnxgan.jobs) so that no second gan-train writes there at the same time.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from onnxgan.errors import UserError
from onnxgan.files import atomic_write, leftover_temp_files
from onnxgan.images import grid, save_png, to_uint8
from onnxgan.jobs import LOCK, FolderLock, holds_files, signal_flag

from .checkpoint import save_checkpoint
from .report import read_metrics  # report.py imports matplotlib only when it draws

# The files a run writes through atomic_write, by folder: their leftover temp files are ours to delete.
OWN_FILES = {".": re.compile(r"config\.json|metrics\.jsonl|curves\.png|report\.html"),
             "checkpoints": re.compile(r"last\.pt|best\.pt|step_[0-9]+\.pt"),
             "samples": re.compile(r"step_[0-9]+\.png")}
MAX_NAME_TRIES = 1000  # runs/<model>-<timestamp>-2, -3, ... before giving up


def default_run_dir(model: str, root: Path = Path("runs"), create: bool = True) -> Path:
    """``root/<model>-<timestamp>``, created exclusively (mkdir fails when it exists) so that runs started
    in the same second each get their own folder: the second one gets ``-2``, and so on.
    ``create=False`` (--dry-run) only names the first candidate."""
    stem = f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not create:
        return root / stem
    for attempt in range(1, MAX_NAME_TRIES + 1):
        path = root / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    raise UserError(f"{root}: {MAX_NAME_TRIES} runs named {stem}* exist already; pass --out")


def check_run_dir(run_dir: Path, resumes: Path | None = None) -> None:
    """Refuse, before anything is written, a folder that this run may not write into.

    A new run (``resumes`` None) needs a missing or empty folder; a resumed run also accepts the folder
    of the run it resumes (``resumes``). The name must be UTF-8 (report.html embeds it).
    """
    try:
        str(run_dir).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"--out {os.fsencode(run_dir)!r}: the folder name is not valid UTF-8; choose another "
                        "name") from None
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder")
    if resumes is not None and run_dir.is_dir() and resumes.is_dir() and run_dir.samefile(resumes):
        return
    if holds_files(run_dir):
        if (run_dir / "checkpoints" / "last.pt").exists() and resumes is None:
            raise UserError(f"{run_dir} already holds a trained run; continue it with --resume {run_dir} "
                            "or choose another --out")
        steps = sorted((run_dir / "checkpoints").glob("step_*.pt"))
        if resumes is None and steps:  # a run killed before its first last.pt
            raise UserError(f"{run_dir} holds a run without checkpoints/last.pt; continue it with --resume "
                            f"{steps[-1]} or choose another --out")
        what = "a new run" if resumes is None else f"the run resumed from {resumes}"
        raise UserError(f"--out {run_dir}: the folder holds files and {what} may write only into a new or "
                        "empty folder; choose another --out")


def resumed_run(resume: str) -> Path:
    """The folder of the run that ``--resume`` names: RUN for RUN or RUN/checkpoints/X.pt, else the file."""
    path = Path(resume)
    return path.parent.parent if path.is_file() and path.parent.name == "checkpoints" else path


@contextmanager
def locked_run_dir(run_dir: Path, resumes: Path | None = None, writes: bool = True,
                   created: bool = False) -> Iterator[Path]:
    """Hold ``run_dir/.lock`` while the block trains; ``check_run_dir`` again once it is held (another
    process may have written there since the first check). A folder made for this run (here, or by
    ``default_run_dir``: ``created``) that the block left empty, failing before it wrote, is removed again.
    ``writes`` False (ranks > 0): nothing to hold."""
    if not writes:
        yield run_dir
        return
    check_run_dir(run_dir, resumes)
    created = created or not run_dir.exists()
    with FolderLock(run_dir, str(run_dir), "another gan-train process is writing this run; wait for it to end "
                    "(or stop it) and resume then"):
        try:
            check_run_dir(run_dir, resumes)
            yield run_dir
        except BaseException:
            if created and not holds_files(run_dir):
                with contextlib.suppress(OSError):
                    (run_dir / LOCK).unlink()
                    run_dir.rmdir()
            raise


def stop_on_signals() -> contextlib.AbstractContextManager[Callable[[], int | None]]:
    """The training loop's signal flag (onnxgan.jobs.signal_flag), read between steps so that a checkpoint
    is never half a step (the loop exits 130 for SIGINT, else 128 + the signal's number). A second Ctrl-C
    while the first is handled stops at once (KeyboardInterrupt): a step can be long."""
    return signal_flag(second_interrupt_raises=True)


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
        """Delete the temp files that a killed run left behind: atomic_write's, of the files a run writes
        (OWN_FILES), and nothing else (a user's hidden file stays; a linked folder is not followed)."""
        if not self.writes:
            return
        for folder, names in ((self.root, OWN_FILES["."]), (self.checkpoints, OWN_FILES["checkpoints"]),
                              (self.samples, OWN_FILES["samples"])):
            for temp in leftover_temp_files(folder, names.fullmatch):
                with contextlib.suppress(OSError):
                    temp.unlink()

    def trim_metrics(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint, a half-written last line and any line that
        is not a row of ours (not an object with an integer step), so the report reads only good rows."""
        if not self.writes or not self.metrics.exists():
            return
        try:
            rows = self.read_metrics()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{self.metrics}: not a readable metrics file ({e}); move it away to resume") from None
        kept = [json.dumps(row) + "\n" for row in rows
                if isinstance(row, dict) and type(row.get("step")) is int and row["step"] <= step]
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
