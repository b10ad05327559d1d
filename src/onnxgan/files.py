"""Atomic file writes: a reader sees the old file or the new one, never a half-written one."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import UserError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only when the block ends without error.

    Temp file in the same folder, fsync, rename, fsync the folder; on any error the temp file goes.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(e, OSError):
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    _fsync_folder(folder)


@contextlib.contextmanager
def new_folder(folder: Path, flag: str = "-o") -> Iterator[Path]:
    """Fill a new or empty ``folder`` all or nothing: yield a staging folder beside it, renamed onto
    ``folder`` when the block ends without error, removed otherwise. OSError -> UserError naming ``flag``."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{flag} {folder}: exists and is not an empty folder; choose a new folder")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as e:
        raise UserError(f"{flag} {folder}: cannot write there ({e.strerror or e})") from None
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result should look like mkdir's
        yield staging
        os.replace(staging, folder)  # POSIX rename: atomic, and allowed onto an empty folder
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise UserError(f"{flag} {folder}: cannot write there ({e.strerror or e})") from None
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk (POSIX; a no-op elsewhere).
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def refuse_overwriting_inputs(output: str | os.PathLike, *inputs: str | os.PathLike, flag: str = "-o") -> None:
    """A ``UserError`` when ``output`` is the same file as one of ``inputs`` (by device and inode, so a
    link, ``./`` or another spelling of the name is caught too): the write would destroy what it reads."""
    try:
        target = os.stat(output)
    except OSError:  # missing: it cannot be an input
        return
    for source in inputs:
        with contextlib.suppress(OSError):
            if os.path.samestat(target, os.stat(source)):
                raise UserError(f"{flag} {output}: is the input {source}; writing there would destroy it, "
                                "choose another output")
