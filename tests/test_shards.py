"""Sharded sampling jobs (runtime/shards.py through gan-sample --shard-size): each shard is its rows of
``Sampler.sample(n, seed)``, the index describes the files, a rerun keeps verified shards and redoes
the rest, a different job is refused, truncated jobs too, and a SIGKILLed job finishes byte for byte on
its rerun."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxgan.runtime import Sampler, latent
from onnxgan.runtime.shards import run_job

from kit import as_from_a_terminal, conditional_model, run_sample

BIN = Path(sys.executable).parent  # the installed entry points live beside the interpreter


def index(folder: Path) -> dict:
    return json.loads((folder / "index.json").read_text())


@pytest.mark.parametrize("latent_dim", [1, 7, 8])
@pytest.mark.parametrize("seed", [0, 2**64 - 1])
def test_latent_rows_from_first_are_a_slice_of_latent(latent_dim, seed):
    full = latent(12, latent_dim, seed)  # (12, latent_dim)
    for first, count in [(0, 0), (0, 12), (1, 4), (3, 9), (5, 1), (11, 1), (12, 0)]:
        np.testing.assert_array_equal(latent(count, latent_dim, seed, first=first), full[first:first + count],
                                      err_msg=f"latent_dim {latent_dim}, rows [{first}, {first + count})")


def test_each_shard_holds_its_rows_of_sample(tmp_path, tiny_model):
    result = run_sample(tiny_model, "-n", 23, "--seed", 5, "--shard-size", 5, "-o", tmp_path / "job")
    assert result.exit_code == 0, result.output
    assert "23 images (seed 5) in 5 shards of 5: 5 written" in result.stdout
    sampler = Sampler(tiny_model)
    z = sampler.latent(23, seed=5)  # (23, 8): the documented z of the whole job
    shards = []
    for k in range(5):
        with np.load(tmp_path / "job" / f"shard_{k:05d}.npz") as shard:
            first = 5 * k
            np.testing.assert_array_equal(shard["images"], sampler.pixels(z[first:first + 5]))
            assert int(shard["first_index"]) == first and shard["labels"].shape == (0,)
            shards.append(shard["images"])
    np.testing.assert_array_equal(np.concatenate(shards), sampler.sample(23, seed=5))


def test_index_describes_the_files(tmp_path, tiny_model):
    result = run_sample(tiny_model, "-n", 12, "--seed", 2**64 - 1, "--shard-size", 5, "-o", tmp_path / "job")
    assert result.exit_code == 0, result.output
    saved = index(tmp_path / "job")
    info = Sampler(tiny_model).info()
    assert {key: value for key, value in saved.items() if key != "shards"} == {
        "onnxgan_shards": 1, "model_sha256": hashlib.sha256(tiny_model.read_bytes()).hexdigest(), "n": 12,
        "seed": 2**64 - 1, "shard_size": 5, "format": "npz", "label": None, "backend": info["backend"],
        "provider": info["provider"], "truncation": None, "shard_count": 3, "complete": True}
    assert [(s["file"], s["first"], s["count"]) for s in saved["shards"]] == [
        ("shard_00000.npz", 0, 5), ("shard_00001.npz", 5, 5), ("shard_00002.npz", 10, 2)]
    for shard in saved["shards"]:
        assert shard["sha256"] == hashlib.sha256((tmp_path / "job" / shard["file"]).read_bytes()).hexdigest()
    assert sorted(os.listdir(tmp_path / "job")) == [".lock", "index.json", *(s["file"] for s in saved["shards"])]


def test_the_index_names_the_bytes_the_sampler_was_built_from(tmp_path, tiny_model):
    expected = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_model.read_bytes())
    sampler = Sampler(path, device="cpu")
    path.write_bytes(b"another model")  # replaced after loading: the job must not read it again
    run_job(sampler, tmp_path / "job", 6, 0, None, 3, "npz", 1)
    assert index(tmp_path / "job")["model_sha256"] == expected


def test_png_shards_are_folders_named_by_global_index(tmp_path, tiny_model):
    assert run_sample(tiny_model, "-n", 7, "--shard-size", 4, "--format", "png", "-o", tmp_path / "job").exit_code == 0
    folder = tmp_path / "job" / "shard_00001"
    names = sorted(os.listdir(folder))
    assert names == ["000004.png", "000005.png", "000006.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "000006.png")), Sampler(tiny_model).sample(7)[6])
    # The documented digest: `cd shard_00001 && sha256sum * | sha256sum`.
    listing = "".join(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n" for name in names)
    assert index(tmp_path / "job")["shards"][1]["sha256"] == hashlib.sha256(listing.encode()).hexdigest()


def test_conditional_labels_follow_the_global_index(tmp_path):
    model, _ = conditional_model(tmp_path / "c.onnx")
    assert run_sample(model, "-n", 8, "--shard-size", 3, "-o", tmp_path / "cycle").exit_code == 0
    assert run_sample(model, "-n", 4, "--shard-size", 3, "--label", "c2", "-o", tmp_path / "fixed").exit_code == 0
    with np.load(tmp_path / "cycle" / "shard_00001.npz") as shard:
        np.testing.assert_array_equal(shard["labels"], [0, 1, 2])  # samples 3, 4, 5 of 3 classes
        sampler = Sampler(model)
        np.testing.assert_array_equal(shard["images"], sampler.sample(8)[3:6])
    with np.load(tmp_path / "fixed" / "shard_00001.npz") as shard:
        np.testing.assert_array_equal(shard["labels"], [2])
    assert index(tmp_path / "fixed")["label"] == 2


@pytest.mark.parametrize("label", [None, "c1"])
def test_sample_from_first_is_a_slice_of_sample(tmp_path, label):
    model, _ = conditional_model(tmp_path / "c.onnx")
    sampler = Sampler(model)
    full = sampler.sample(10, seed=3, labels=label, truncation=0.6)  # (10, H, W)
    for first, count in [(0, 10), (1, 4), (4, 3), (9, 1), (10, 0)]:
        np.testing.assert_array_equal(sampler.sample(count, 3, label, 0.6, first=first), full[first:first + count],
                                      err_msg=f"label {label}, images [{first}, {first + count})")
    np.testing.assert_array_equal(sampler.labels(3, None, first=4), [1, 2, 0])  # 3 classes, global index 4..6


def test_truncated_shards_hold_their_rows_of_truncated_sample(tmp_path):
    model, _ = conditional_model(tmp_path / "c.onnx")
    result = run_sample(model, "-n", 8, "--shard-size", 3, "--truncation", 0.5, "-o", tmp_path / "job")
    assert result.exit_code == 0, result.output
    assert "8 images (seed 0, truncation 0.5) in 3 shards" in result.stdout
    shards = []
    for k in range(3):
        with np.load(tmp_path / "job" / f"shard_{k:05d}.npz") as shard:
            np.testing.assert_array_equal(shard["labels"], np.arange(3 * k, min(3 * k + 3, 8)) % 3)
            shards.append(shard["images"])
    images = np.concatenate(shards)
    np.testing.assert_array_equal(images, Sampler(model).sample(8, truncation=0.5))
    assert not np.array_equal(images, Sampler(model).sample(8))  # the truncation took effect
    assert index(tmp_path / "job")["truncation"] == 0.5


def test_an_index_from_before_truncation_reads_as_untruncated(tmp_path, tiny_model):
    job = tmp_path / "job"
    args = (tiny_model, "-n", 10, "--shard-size", 5, "-o", job)
    assert run_sample(*args).exit_code == 0
    old = index(job)
    del old["truncation"]  # as an index written before shard jobs took --truncation
    (job / "index.json").write_text(json.dumps(old))
    result = run_sample(*args)
    assert result.exit_code == 0, result.output
    assert "0 written" in result.stdout and "2 verified and kept" in result.stdout


def test_rerun_keeps_verified_shards_and_redoes_the_rest(tmp_path, tiny_model):
    job = tmp_path / "job"
    args = (tiny_model, "-n", 20, "--shard-size", 5, "-o", job)
    assert run_sample(*args).exit_code == 0
    original = {name: (job / name).read_bytes() for name in os.listdir(job) if name.startswith("shard_")}
    kept = (job / "shard_00000.npz").stat()
    corrupted = bytearray(original["shard_00001.npz"])
    corrupted[len(corrupted) // 2] ^= 0xFF  # in the images' data: the zip directory still names a shard's arrays
    (job / "shard_00001.npz").write_bytes(bytes(corrupted))
    (job / "shard_00002.npz").unlink()
    (job / ".shard_00003.npz.x1y2z3w4.tmp").write_bytes(b"a write cut short")
    result = run_sample(*args)
    assert result.exit_code == 0, result.output
    assert "2 written" in result.stdout and "2 verified and kept" in result.stdout
    assert {name: (job / name).read_bytes() for name in original} == original
    after = (job / "shard_00000.npz").stat()
    assert (after.st_ino, after.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)  # not rewritten
    assert not (job / ".shard_00003.npz.x1y2z3w4.tmp").exists()
    assert index(job)["complete"]


@pytest.mark.parametrize("change, message", [
    (["-n", 21], "n 20 there, 21 now"),
    (["--seed", 1], "seed 0 there, 1 now"),
    (["--shard-size", 4], "shard_size 5 there, 4 now"),
    (["--format", "png"], "format 'npz' there, 'png' now"),
    (["--truncation", 0.7], "truncation None there, 0.7 now"),
    ([], "model_sha256 "),  # with another model file
])
def test_a_different_job_in_the_same_folder_is_refused(tmp_path, tiny_model, change, message):
    job = tmp_path / "job"
    assert run_sample(tiny_model, "-n", 20, "--shard-size", 5, "-o", job).exit_code == 0
    before = (job / "index.json").read_bytes()
    model = tiny_model
    if not change:  # the same generator with another package_version in its metadata: another file
        model = tmp_path / "other.onnx"
        model.write_bytes(tiny_model.read_bytes().replace(b'"0.1.0"', b'"0.1.1"'))
    result = run_sample(model, "-n", 20, "--shard-size", 5, "-o", job, *change)  # click keeps an option's last value
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "holds another job" in result.stderr and message in result.stderr
    assert (job / "index.json").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--shard-size", 5, "-o", "{tmp}/x.npz"], "a --shard-size job writes a folder"),
    (["--workers", 2, "-o", "{tmp}/out"], "--workers applies to sharded jobs only"),
    (["--format", "png", "-o", "{tmp}/out"], "--format applies to sharded jobs only"),
    (["--shard-size", 5, "--interpolate", 1, 2, "-o", "{tmp}/w.png"], "--shard-size does not apply to --interpolate"),
    (["--shard-size", 5, "-o", "{tmp}/busy"], "holds files but no index.json"),
    (["-n", 10**15, "--shard-size", 10**14, "-o", "{tmp}/huge"], "more than this machine's"),
])
def test_shard_option_mistakes_are_one_line(tmp_path, tiny_model, args, message):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("someone else's")
    result = run_sample(tiny_model, *[str(a).format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.output


def test_a_killed_job_finishes_byte_for_byte_on_rerun(tmp_path, tiny_model):
    """SIGKILL the installed gan-sample (2 workers) once some shards are recorded; its workers must go
    too; the rerun must end with the files of one uninterrupted run."""
    job, fresh = tmp_path / "job", tmp_path / "fresh"
    command = [str(BIN / "gan-sample"), str(tiny_model), "-n", "60000", "--shard-size", "500", "--workers", "2", "-o"]
    process = subprocess.Popen([*command, str(job)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not ((job / "index.json").exists() and len(index(job)["shards"]) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, "the job ended before any shard was recorded"
        time.sleep(0.01)
    workers = _children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = index(job)
    assert not interrupted["complete"], "the job finished before the kill; give it more shards"
    _wait_until_gone(workers)

    assert subprocess.run([*command, str(job)], capture_output=True).returncode == 0
    assert subprocess.run([*command, str(fresh)], capture_output=True).returncode == 0
    resumed, uninterrupted = index(job), index(fresh)
    assert resumed["complete"] and resumed["shards"] == uninterrupted["shards"]
    for shard in resumed["shards"]:
        assert hashlib.sha256((job / shard["file"]).read_bytes()).hexdigest() == shard["sha256"], shard["file"]
    assert sorted(os.listdir(job)) == sorted(os.listdir(fresh))  # no temp file left behind


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_pool_job_between_batches(tmp_path, tiny_model, signum, code):
    """Ctrl-C or SIGTERM to the installed gan-sample (2 workers) only sets the house's signal flag
    (onnxgan.jobs), read between batches: one line, its exit code, the workers gone, and an index whose
    every shard is on disk as recorded."""
    job = tmp_path / "job"
    command = [str(BIN / "gan-sample"), str(tiny_model), "-n", "60000", "--shard-size", "500", "--workers", "2"]
    process = subprocess.Popen([*command, "-o", str(job)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 60
    while not ((job / "index.json").exists() and len(index(job)["shards"]) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, "the job ended before any shard was recorded"
        time.sleep(0.01)
    workers = _children(process.pid)
    process.send_signal(signum)
    stderr = process.communicate(timeout=60)[1]
    # one line (after Ctrl-C click first ends the terminal's "^C" line with an empty one)
    assert process.returncode == code and len(stderr.strip().splitlines()) == 1 and "gan-sample: error:" in stderr, stderr
    _wait_until_gone(workers)
    stopped = index(job)
    assert not stopped["complete"], "the job finished before the signal; give it more shards"
    for shard in stopped["shards"]:
        assert hashlib.sha256((job / shard["file"]).read_bytes()).hexdigest() == shard["sha256"], shard["file"]


def _children(pid: int) -> list[int]:
    """The pool's processes (Linux /proc); an empty list where the kernel does not list children."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _wait_until_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            assert time.monotonic() < deadline, f"worker {pid} outlived its killed parent"
            time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]  # after "(comm)"
    except (OSError, IndexError):
        return "gone"
