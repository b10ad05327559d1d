"""What keeps a long job orderly, for training (train/run_files.py) and shard jobs (runtime/shards.py): the
folder lock (one writer per folder) and the signal flag (stop between steps, never mid-write).

The lock is FOLDER/.lock held with flock: the kernel frees it when its holder dies, so a killed job never
blocks its rerun or resume.
"""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import TERMINATING, UserError, raise_terminated

LOCK = ".lock"  # in the folder; held (flock) while a job writes there


class FolderLock:
    """Hold ``folder/.lock`` (created with the folder if missing) for the ``with`` block; a second holder
    is refused with ``busy``. ``label`` names the folder in messages (e.g. ``-o out``)."""

    def __init__(self, folder: Path, label: str, busy: str):
        self.folder, self.label, self.busy = folder, label, busy

    def __enter__(self) -> "FolderLock":
        import fcntl  # POSIX; imported here so that the modules using the lock import everywhere

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.file = open(self.folder / LOCK, "ab")
        except OSError as e:
            raise UserError(f"{self.label}: cannot write there ({e.strerror or e})") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise UserError(f"{self.label}: {self.busy}") from None
        return self

    def check(self) -> None:
        """A ``UserError`` unless the folder's .lock is still the file this job locked: a folder deleted or
        moved while the job ran must not be recreated half full."""
        try:
            here = os.stat(self.folder / LOCK)
        except OSError:
            here = None
        if here is None or not os.path.samestat(here, os.fstat(self.file.fileno())):
            raise UserError(f"{self.label}: the folder was deleted or moved while the job ran; rerun the job")

    def __exit__(self, *exc: object) -> None:
        self.file.close()  # closing releases the flock


def holds_files(folder: Path) -> bool:
    """True when ``folder`` has an entry other than the lock (a missing folder holds none)."""
    try:
        return any(entry.name != LOCK for entry in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):  # missing, or under a file: creating it will say so
        return False
    except OSError as e:
        raise UserError(f"cannot read {folder}: {e.strerror or e}") from None


@contextmanager
def signal_flag(second_interrupt_raises: bool = False) -> Iterator[Callable[[], int | None]]:
    """Turn SIGINT, SIGTERM and SIGHUP (TERMINATING) into a flag that the job reads between steps, so that
    a signal never lands mid-write (nor inside concurrent.futures' locks, where a KeyboardInterrupt would
    leave a lock held). Yields a function returning the first signal received, or None.

    Only handlers that would stop the job anyway are replaced (the default, Python's Ctrl-C handler,
    ``raise_terminated``); an ignored signal (``nohup``) or a caller's own handler stays as it is.
    ``second_interrupt_raises``: a second Ctrl-C while the first is handled raises KeyboardInterrupt (a
    training step can be long; a second Ctrl-C means now).
    """
    received: list[int] = []

    def handler(signum, frame):
        if second_interrupt_raises and received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    stops = (signal.SIG_DFL, signal.default_int_handler, raise_terminated)
    previous = {s: h for s in (signal.SIGINT, *TERMINATING) if (h := signal.getsignal(s)) in stops}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
