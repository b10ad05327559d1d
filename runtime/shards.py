"""Big sampling jobs: ``gan-sample MODEL -n N -o FOLDER/ --shard-size S [--workers K] [--format npz|png]``.

Shard k holds the global samples [k*S, min((k+1)*S, N)) with exactly the z and labels of
``Sampler.sample(N, seed, label, truncation)`` (made by ``Sampler.sample(..., first=k*S)``), so the shards laid end to end are one ``gan-sample -n N`` run whatever S
and K are. K worker processes (spawn) each hold their own Sampler and write whole shards; the parent
alone writes FOLDER/index.json (atomically, after every shard) and holds FOLDER/.lock (onnxgan.jobs). A rerun keeps
each shard the index records whose file still has its recorded sha256 and redoes the rest, so a
killed job loses at most the shards in flight. docs/sharding.md specifies the files.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import threading
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from onnxgan.errors import Terminated, UserError
from onnxgan.files import atomic_write, leftover_temp_files, new_folder
from onnxgan.jobs import FolderLock, holds_files, signal_flag

from ._native import MAX_THREADS
from .sampler import Sampler, check_fits_in_memory

FORMATS = ("npz", "png")
INDEX = "index.json"
INDEX_VERSION = 1  # the "onnxgan_shards" key of index.json
SHARD_NAME = re.compile(r"shard_[0-9]{5,}(\.npz)?")  # Job.name's names


@dataclass(frozen=True)
class Job:
    """What a folder's shards are. A rerun must agree on every field, or one folder would mix two jobs
    (backend and provider too: the native kernel and onnxruntime may round a pixel differently). A field
    added after the first index version has a default, which an index without it is read as."""

    model_sha256: str
    n: int
    seed: int
    shard_size: int
    format: str
    label: int | None
    backend: str
    provider: str
    truncation: float | None = None

    @property
    def shard_count(self) -> int:
        return -(-self.n // self.shard_size)

    def first(self, k: int) -> int:
        return k * self.shard_size

    def count(self, k: int) -> int:
        return min(self.shard_size, self.n - self.first(k))

    def name(self, k: int) -> str:
        width = max(5, len(str(self.shard_count - 1)))
        return f"shard_{k:0{width}d}" + (".npz" if self.format == "npz" else "")


def write_shard(sampler: Sampler, job: Job, k: int, folder: Path) -> dict:
    """Generate shard k, write it whole under its name, and return its index entry."""
    first, count = job.first(k), job.count(k)
    # (count, H, W) or (count, H, W, C), and the int64 (count,) labels they were made with (None: unconditional)
    pixels = sampler.sample(count, job.seed, job.label, job.truncation, first=first)
    labels = sampler.labels(count, job.label, first)
    path = folder / job.name(k)
    if not folder.is_dir():  # deleted or moved while the job ran: never recreate it half full
        raise UserError(f"-o {folder}: the folder went away while the job ran; rerun the job")
    # A leftover of this job (check_replaceable let it through) goes; what cannot be removed makes the
    # write below fail with its one line.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
    if job.format == "npz":
        with atomic_write(path) as f:  # numpy writes fixed zip timestamps: same arrays, same bytes
            np.savez(f, images=pixels, labels=np.empty(0, np.int64) if labels is None else labels,
                     first_index=np.int64(first))
    else:
        with new_folder(path) as staging:  # filled under a temp name (new_folder's ".shard_....tmp"), renamed whole
            for i, image in enumerate(pixels):
                Image.fromarray(image).save(staging / png_name(job, first + i))
    return {"file": path.name, "first": first, "count": count, "sha256": digest(path)}


def check_replaceable(folder: Path, job: Job, k: int, recorded: set[int]) -> None:
    """A ``UserError`` unless what stands at shard k's name (if anything) is what a run of this job can
    have left there, so that a rerun replaces nothing else: where an .npz belongs, a regular file laid
    out as write_shard writes one (_is_shard_archive); where a PNG folder belongs, a folder of regular
    files named as the shard's PNGs. A user's folder, file or link at that name is never deleted."""
    path = folder / job.name(k)
    if not os.path.lexists(path):
        return
    if job.format == "npz":
        ours = path.is_file() and not path.is_symlink() and _is_shard_archive(path, job, k, k in recorded)
    else:
        names = {png_name(job, i) for i in range(job.first(k), job.first(k) + job.count(k))}
        ours = path.is_dir() and not path.is_symlink() and all(
            entry.name in names and entry.is_file() and not entry.is_symlink() for entry in path.iterdir())
    if not ours:
        raise UserError(f"-o {folder}: {path.name} is not a shard of this job (a {_kind(path)}); move it away, "
                        "then rerun")


SHARD_MEMBERS = ["first_index.npy", "images.npy", "labels.npy"]  # write_shard's np.savez, sorted


def _is_shard_archive(path: Path, job: Job, k: int, recorded: bool) -> bool:
    """An .npz whose zip directory names exactly write_shard's arrays, and either shard k is in the index
    (``recorded``: written, then damaged, so its data need not read) or its first_index is shard k's
    first sample (a job killed between writing the shard and recording it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if sorted(archive.namelist()) != SHARD_MEMBERS:
                return False
        if recorded:
            return True
        with np.load(path, allow_pickle=False) as npz:
            first = npz["first_index"]
            return first.shape == () and first.dtype == np.int64 and int(first) == job.first(k)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def png_name(job: Job, i: int) -> str:
    """The file name of global sample i in a PNG shard: its index in at least 6 digits."""
    return f"{i:0{max(6, len(str(job.n - 1)))}d}.png"


def _kind(path: Path) -> str:
    return "link" if path.is_symlink() else "folder" if path.is_dir() else "file" if path.is_file() else "special file"


def digest(path: Path) -> str:
    """sha256 hex of a shard: an .npz file's bytes; for a PNG folder, the sha256 of the text that
    ``sha256sum`` prints for its files in name order (``cd shard_00000 && sha256sum * | sha256sum``)."""
    if path.is_dir():
        listing = "".join(f"{hashlib.sha256(entry.read_bytes()).hexdigest()}  {entry.name}\n"
                          for entry in sorted(path.iterdir()))
        return hashlib.sha256(listing.encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def worker_threads(workers: int, threads: int | None) -> int:
    """Intra-op threads of each worker's Sampler: --threads, else the cores shared out among workers (at
    most MAX_THREADS, which a Sampler accepts)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return threads or min(MAX_THREADS, max(1, cores // workers))


def run_job(sampler: Sampler, folder: Path, n: int, seed: int, label: int | None, shard_size: int,
            shard_format: str, workers: int, truncation: float | None = None) -> str:
    """Write (or finish) the job in ``folder`` with ``sampler``'s backend; returns the summary line.

    ``sampler`` is the parent's, built with ``worker_threads`` threads; with one worker it writes the
    shards itself, with more each worker process builds its own from the parent's bytes and device.
    """
    # Each worker holds up to two shards at once (its own and the next one queued).
    check_fits_in_memory(min(shard_size, n) * 2 * max(workers, 1), sampler.model_info)
    sampler.latent(0, seed, truncation)  # refuses a bad seed or truncation before anything is written
    info = sampler.info()
    job = Job(sampler.sha256, n, seed, shard_size, shard_format, label, info["backend"], info["provider"],
              truncation)
    with _locked(folder) as lock:
        kept, recorded = _verified_shards(folder, job)
        todo = [k for k in range(job.shard_count) if k not in kept]
        for k in todo:  # before anything is written or deleted
            check_replaceable(folder, job, k, recorded)
        _write_index(lock, job, kept)  # drops the entries that failed verification
        bar = tqdm(total=job.shard_count, initial=len(kept), unit="shard", dynamic_ncols=True, disable=None,
                   file=sys.stderr)
        start, written = time.perf_counter(), 0
        # closing(): after an error or Ctrl-C in this loop (in an index write, say) the pool stops at once,
        # not when the interpreter exits (which would wait for every queued shard)
        with contextlib.closing(_finished_shards(sampler, job, todo, folder, workers)) as finished:
            for entries in finished:
                kept.update((entry["first"] // shard_size, entry) for entry in entries)
                _write_index(lock, job, kept)
                written += sum(entry["count"] for entry in entries)
                bar.update(len(entries))
                bar.set_postfix_str(f"{written / (time.perf_counter() - start):.0f} samples/s")
        bar.close()
    elapsed = time.perf_counter() - start
    truncated = "" if truncation is None else f", truncation {truncation}"
    return (f"{folder}: {n} images (seed {seed}{truncated}) in {job.shard_count} shards of {shard_size}: {len(todo)} written "
            f"in {elapsed:.1f} s at {written / max(elapsed, 1e-9):.0f} samples/s, {len(kept) - len(todo)} verified and "
            f"kept ({info['backend']}, {info['provider']}, {workers} worker(s) x {info['threads']} thread(s))")


def _finished_shards(sampler: Sampler, job: Job, todo: list[int], folder: Path, workers: int) -> Iterator[list[dict]]:
    """Write the shards ``todo``; yield the index entries of those finished since the last yield.

    Batches, because the parent's atomic index write (two fsyncs) can take longer than a small shard:
    one write per batch keeps the index within one write of the files on disk.
    """
    if workers == 1:
        for k in todo:
            yield [write_shard(sampler, job, k, folder)]
        return
    info = sampler.info()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(sampler.data, info["backend"], sampler.device, info["threads"]))
    try:
        # a signal only sets the flag, read between batches (see signal_flag)
        with signal_flag() as received:
            queue, pending = iter(todo), set()
            while True:
                # Two shards per worker in the pool: each has the next at hand, and an interrupted job
                # has little queued (wait() also scans every pending future, so fewer is cheaper).
                pending |= {pool.submit(_worker_shard, job, k, folder) for k in itertools.islice(
                    queue, 2 * workers - len(pending))}
                if not pending:
                    return
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if (signum := received()) is not None:
                    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
                if done:
                    yield [future.result() for future in done]
    finally:
        # On an error or Ctrl-C, do not wait for the shards in flight: a rerun redoes them.
        pool.shutdown(wait=False, cancel_futures=True)


_worker_sampler: Sampler | None = None  # one per worker process, built by _start_worker


def _start_worker(data: bytes, backend: str, device: str, threads: int) -> None:
    global _worker_sampler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent handles it
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    _worker_sampler = Sampler(data, backend=backend, device=device, threads=threads)


def _exit_with_parent() -> None:
    # A SIGKILLed parent cannot stop its pool; without this its workers would wait on the queue forever.
    multiprocessing.parent_process().join()  # returns when the parent process has gone
    os._exit(1)


def _worker_shard(job: Job, k: int, folder: Path) -> dict:
    return write_shard(_worker_sampler, job, k, folder)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[FolderLock]:
    """Hold FOLDER/.lock so that two jobs never write one folder, and clear the leftovers of writes cut
    short: atomic_write's temp files, new_folder's staging folders."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"-o {folder}: exists and is not a folder; a --shard-size job writes a folder")
    with FolderLock(folder, f"-o {folder}", "another gan-sample job is writing there; wait for it or use another "
                    "folder") as lock:
        for entry in leftover_temp_files(folder, lambda name: name == INDEX or SHARD_NAME.fullmatch(name),
                                         folders=True):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        yield lock


def _verified_shards(folder: Path, job: Job) -> tuple[dict[int, dict], set[int]]:
    """The shards a previous run of this job finished and whose files still match, {k: index entry}, and
    every shard k the index records (matching or not).

    A new folder must be empty (but for our lock); a folder of another job is refused.
    """
    path = folder / INDEX
    if not path.exists():
        if holds_files(folder):
            raise UserError(f"-o {folder}: holds files but no {INDEX}; give a new or empty folder, or the folder "
                            "of an earlier --shard-size job to finish it")
        return {}, set()
    try:
        index = json.loads(path.read_text())
        recorded = {field.name: index[field.name] if field.default is MISSING else index.get(field.name, field.default)
                    for field in fields(Job)}
        entries = [(entry["first"] // job.shard_size, entry) for entry in index["shards"] if _is_entry(entry, job)]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a gan-sample shard index ({e.__class__.__name__}: {e}); use a new "
                        "folder") from None
    for name, value in asdict(job).items():
        if recorded[name] != value:
            raise UserError(f"-o {folder}: holds another job ({name} {recorded[name]!r} there, {value!r} now); "
                            "rerun with that job's model and options, or use a new folder")
    kept = {}
    for k, entry in entries:
        try:
            matches = digest(folder / job.name(k)) == entry.get("sha256")
        except OSError:  # missing, or not what a shard should be
            matches = False
        if matches:
            kept[k] = entry
    return kept, {k for k, _ in entries}


def _is_entry(entry: object, job: Job) -> bool:
    """An index entry as ``write_shard`` records it ({"first": k * shard_size, "count", "sha256", ...});
    anything else (a float "first", say) is not trusted, and its shard is written again."""
    first = entry.get("first") if isinstance(entry, dict) else None
    return (type(first) is int and 0 <= first < job.n and first % job.shard_size == 0
            and entry.get("count") == job.count(first // job.shard_size) and isinstance(entry.get("sha256"), str))


def _write_index(lock: FolderLock, job: Job, shards: dict[int, dict]) -> None:
    lock.check()
    folder = lock.folder
    index = {"onnxgan_shards": INDEX_VERSION, **asdict(job), "shard_count": job.shard_count,
             "complete": len(shards) == job.shard_count, "shards": [shards[k] for k in sorted(shards)]}
    with atomic_write(folder / INDEX) as f:
        f.write((json.dumps(index, indent=1) + "\n").encode())
