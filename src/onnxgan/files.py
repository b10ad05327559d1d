"""Atomic file writes: a reader sees the old file or the new one, never a half-written one; and the
temp names they use, so that clean-ups delete only those."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from .errors import UserError

NAME_MAX = 255  # bytes in one path component (Linux, macOS; Windows counts 255 characters)
TEMP_SUFFIX = ".tmp"
# mkstemp's and mkdtemp's random part: 8 characters of this alphabet (CPython's tempfile._RandomNameSequence)
_RANDOM = "[a-z0-9_]{8}"


def temp_prefix(name: str) -> str:
    """The prefix of a temp name beside the file or folder ``name``: ``.NAME.``, with NAME cut short so
    that the whole temp name (the prefix, 8 random characters and .tmp) fits in NAME_MAX bytes: a valid
    250-byte name must not fail because of the temp name added to it."""
    room = NAME_MAX - 2 - 8 - len(TEMP_SUFFIX)  # the two dots, the random part, the suffix
    encoded = os.fsencode(name)
    if len(encoded) > room:  # cut on a character boundary (a cut UTF-8 sequence would not encode back)
        name = encoded[:room].decode("utf-8", "ignore") if _utf8(encoded) else os.fsdecode(encoded[:room])
    return f".{name}."


def _utf8(encoded: bytes) -> bool:
    try:
        encoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def leftover_temp_files(folder: Path, owns: Callable[[str], bool], folders: bool = False) -> list[Path]:
    """The temp files that ``atomic_write`` left in ``folder`` (a write cut short by a kill) for a target
    name that ``owns`` accepts (and, with ``folders``, ``new_folder``'s staging folders): never a link,
    and nothing in a folder that is itself a link (a clean-up must not follow a link into someone
    else's folder). Anything else with a hidden name is the user's."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    pattern = re.compile(rf"\.(?P<target>.+)\.{_RANDOM}{re.escape(TEMP_SUFFIX)}", re.DOTALL)
    found = []
    for entry in folder.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and owns(match["target"]) and not entry.is_symlink() and (
                entry.is_file() or (folders and entry.is_dir())):
            found.append(entry)
    return found


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only when the block ends without error.

    Temp file in the same folder, fsync, rename, fsync the folder; on any error the temp file goes.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=folder)
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
        staging = Path(tempfile.mkdtemp(prefix=temp_prefix(folder.name), suffix=TEMP_SUFFIX, dir=folder.parent))
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
