"""A command deletes only what it wrote (issue 24, hostile use round three, data loss).

A rerun of a shard job replaces only what a run of that job can have left at a shard's name (never a
user's folder, file or link); a job whose folder goes away mid-run does not recreate it with an index
over shards that are not there; ``gan-train --resume`` deletes only its own temp files and follows no
link out of the run folder. Each refusal: one line, exit 2, the user's files untouched.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kit import TINY_MODEL, TRAIN, assert_refused, image_data, invoke, snapshot
from onnxgan.errors import UserError
from onnxgan.runtime import Sampler, shards
from onnxgan.runtime.cli import main as gan_sample
from onnxgan.train.cli import main as gan_train


def finished_job(folder: Path, shard_format: str) -> list:
    args = [TINY_MODEL, "-n", 10, "--shard-size", 5, "--format", shard_format, "-o", folder]
    assert invoke(gan_sample, args).exit_code == 0
    return args


def users_folder(path: Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("the user's own file")


@pytest.mark.parametrize("shard_format, shard, plant", [
    ("npz", "shard_00001.npz", users_folder),  # a folder where an npz shard belongs
    ("png", "shard_00001", lambda path: path.write_text("the user's own file")),  # a file where a PNG folder belongs
    ("png", "shard_00001", users_folder),  # a folder of other files where a PNG folder belongs
    ("npz", "shard_00001.npz", lambda path: path.symlink_to(path.parent.parent / "elsewhere.npz")),
    ("npz", "shard_00001.npz", lambda path: path.write_text("the user's own file")),  # a file at a recorded name
    ("npz", "shard_00001.npz", lambda path: np.savez(path, images=np.zeros((5, 2, 2), np.uint8))),  # the user's npz
])
def test_a_rerun_never_deletes_what_it_did_not_write(tmp_path, shard_format, shard, plant):
    job = tmp_path / "job"
    args = finished_job(job, shard_format)
    (tmp_path / "elsewhere.npz").write_text("the user's own file")
    path = job / shard
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    plant(path)
    before = snapshot(tmp_path)
    assert_refused(invoke(gan_sample, args), "gan-sample", 2, "shard_00001")
    assert snapshot(tmp_path) == before


def test_a_damaged_png_shard_of_the_job_is_still_redone(tmp_path):
    job = tmp_path / "job"
    args = finished_job(job, "png")
    original = (job / "shard_00001" / "000006.png").read_bytes()
    (job / "shard_00001" / "000006.png").write_bytes(b"cut short by a crash")
    (job / "shard_00001" / "000007.png").unlink()
    result = invoke(gan_sample, args)
    assert result.exit_code == 0, result.output
    assert (job / "shard_00001" / "000006.png").read_bytes() == original


def test_hidden_files_of_the_user_survive_a_rerun(tmp_path):
    job = tmp_path / "job"
    args = finished_job(job, "npz")
    mine = [job / ".shard_notes", job / ".shard_00001.npz.mine.tmp", job / ".index.json.backup"]
    for path in mine:
        path.write_text("the user's own file")
    (job / ".shard_00002.npz.a1b2c3d4.tmp").write_bytes(b"a write cut short")  # atomic_write's own name
    assert invoke(gan_sample, args).exit_code == 0
    assert all(path.read_text() == "the user's own file" for path in mine)
    assert not (job / ".shard_00002.npz.a1b2c3d4.tmp").exists()


def test_a_job_whose_folder_is_deleted_mid_run_writes_no_index(tmp_path, monkeypatch):
    job, written = tmp_path / "job", []
    write_shard = shards.write_shard

    def write_then_delete(sampler, job_spec, k, folder):
        entry = write_shard(sampler, job_spec, k, folder)
        written.append(k)
        if k == 1:
            shutil.rmtree(folder)  # someone deletes the job's folder while it runs
        return entry

    monkeypatch.setattr(shards, "write_shard", write_then_delete)
    with pytest.raises(UserError, match="deleted or moved while the job ran"):
        shards.run_job(Sampler(TINY_MODEL), job, 20, 0, None, 2, "npz", 1)
    assert written == [0, 1] and not job.exists()


@pytest.fixture
def run(tmp_path) -> Path:
    image_data(tmp_path / "data.npy")
    assert invoke(gan_train, ["--data", tmp_path / "data.npy", *TRAIN, "--out", tmp_path / "run"]).exit_code == 0
    return tmp_path / "run"


def test_resume_deletes_only_its_own_temp_files(run):
    mine = [run / ".notes.tmp", run / "checkpoints" / ".backup.tmp", run / "samples" / ".draft.abcdefgh.tmp",
            run / ".config.json.old.tmp"]
    for path in mine:
        path.write_text("the user's own file")
    ours = [run / ".config.json.a1b2c3d4.tmp", run / "checkpoints" / ".last.pt.zz99_x0q.tmp",
            run / "samples" / ".step_0000002.png.k3j4h5g6.tmp"]
    for path in ours:
        path.write_bytes(b"a write cut short")
    result = invoke(gan_train, ["--resume", run, "--steps", 3])
    assert result.exit_code == 0, result.output
    assert all(path.read_text() == "the user's own file" for path in mine)
    assert not any(path.exists() for path in ours)


def test_resume_follows_no_link_out_of_the_run_folder(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".step_0000001.png.a1b2c3d4.tmp").write_text("the user's own file")  # our pattern, their folder
    (elsewhere / ".notes.tmp").write_text("the user's own file")
    for grid in (run / "samples").iterdir():
        shutil.move(grid, elsewhere / grid.name)
    (run / "samples").rmdir()
    (run / "samples").symlink_to(elsewhere)
    before = {name: (elsewhere / name).read_text() for name in os.listdir(elsewhere) if name.endswith(".tmp")}
    invoke(gan_train, ["--resume", run, "--steps", 3])
    assert {name: (elsewhere / name).read_text() for name in before} == before



def _forget_shard(job: Path, name: str) -> None:
    """Drop shard `name` from index.json, as a job killed between writing the shard and recording it."""
    index = json.loads((job / "index.json").read_text())
    index["shards"] = [entry for entry in index["shards"] if entry["file"] != name]
    index["complete"] = False
    (job / "index.json").write_text(json.dumps(index))


def test_an_unrecorded_shard_of_the_job_is_redone_and_another_shards_file_is_kept(tmp_path):
    job = tmp_path / "job"
    args = finished_job(job, "npz")
    original = (job / "shard_00001.npz").read_bytes()
    _forget_shard(job, "shard_00001.npz")
    result = invoke(gan_sample, args)
    assert result.exit_code == 0 and "1 written" in result.stdout, result.output
    assert (job / "shard_00001.npz").read_bytes() == original
    # shard 0's arrays at shard 1's unrecorded name: a shard, but not this one (its first_index is 0)
    shutil.copyfile(job / "shard_00000.npz", job / "shard_00001.npz")
    _forget_shard(job, "shard_00001.npz")
    before = snapshot(tmp_path)
    assert_refused(invoke(gan_sample, args), "gan-sample", 2, "shard_00001")
    assert snapshot(tmp_path) == before
