"""A run folder belongs to one run, and gan-train writes nowhere else (issue 13, class 1).

A new run needs a missing or empty folder; a resumed run writes into the run it resumes (or a new or
empty folder); a second gan-train on a run that is training is refused; default names never collide;
a run that fails before writing leaves no folder behind. Each refusal: one line, exit 2, nothing touched.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kit import TRAIN, assert_refused, image_data, invoke, snapshot
from onnxgan.jobs import LOCK
from onnxgan.train import run_files
from onnxgan.train.cli import main as gan_train


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 2-step run on 64 random 8x8 images (its data beside it)."""
    root = tmp_path_factory.mktemp("trained")
    image_data(root / "data.npy")
    result = invoke(gan_train, ["--data", root / "data.npy", *TRAIN, "--out", root / "run"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def world(trained, tmp_path, monkeypatch) -> Path:
    """tmp_path with data.npy, a finished run A, another finished run B and a user's folder of files."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(trained / "data.npy", tmp_path / "data.npy")
    for name in ("A", "B"):
        shutil.copytree(trained / "run", tmp_path / name)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's own file")
    # an old run folder whose last.pt is gone but whose step checkpoints remain
    shutil.copytree(trained / "run", tmp_path / "old")
    os.replace(tmp_path / "old" / "checkpoints" / "last.pt", tmp_path / "old" / "checkpoints" / "step_0000002.pt")
    return tmp_path


NEW = ["--data", "data.npy", *TRAIN]
ROWS = [  # (id, arguments, words in the one line)
    ("new-run-into-a-folder-of-files", [*NEW, "--out", "mine"], "holds files"),
    ("new-run-into-a-run-without-last-pt", [*NEW, "--out", "old"], "--resume old/checkpoints/step_0000002.pt"),
    ("new-run-into-a-finished-run", [*NEW, "--out", "A"], "already holds a trained run"),
    ("resume-into-another-run", ["--resume", "A", "--steps", "4", "--out", "B"], "holds files"),
    ("resume-into-a-folder-of-files", ["--resume", "A", "--steps", "4", "--out", "mine"], "holds files"),
    ("resume-step-checkpoint-into-another-run", ["--resume", "A/checkpoints/last.pt", "--steps", "4", "--out", "old"],
     "holds files"),
    ("new-run-into-a-non-utf8-name", [*NEW, "--out", os.fsdecode(b"run-\xff")], "not valid UTF-8"),
]


@pytest.mark.parametrize("name, args, words", ROWS, ids=[row[0] for row in ROWS])
def test_a_folder_of_another_run_or_of_the_user_is_refused_untouched(world, name, args, words):
    before = snapshot(world)
    assert_refused(invoke(gan_train, args), "gan-train", 2, words)
    assert snapshot(world) == before


def test_a_second_process_on_a_training_run_is_refused(world):
    """The first process holds A/.lock (here: this test, as another process would); resuming A waits for it."""
    with open(world / "A" / LOCK, "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = snapshot(world)
        assert_refused(invoke(gan_train, ["--resume", "A", "--steps", "4"]), "gan-train", 2,
                       "another gan-train process is writing this run")
        assert snapshot(world) == before
    resumed = invoke(gan_train, ["--resume", "A", "--steps", "4"])  # the lock's holder has gone
    assert resumed.exit_code == 0, resumed.output


def test_resume_writes_into_its_own_run_and_new_or_empty_folders(world):
    (world / "empty").mkdir()
    for out in (["--out", "empty"], ["--out", "fresh"], []):
        result = invoke(gan_train, ["--resume", "A", "--steps", "4", *out])
        assert result.exit_code == 0, result.output
    assert {p.name for p in (world / "empty" / "checkpoints").iterdir()} == {"last.pt"}
    assert (world / "fresh" / "checkpoints" / "last.pt").is_file()


def test_a_run_that_fails_before_writing_leaves_no_folder(world):
    before = snapshot(world)
    assert_refused(invoke(gan_train, [*NEW, "--batch-size", "128", "--out", "new"]), "gan-train", 2,
                   "larger than the data set")
    assert_refused(invoke(gan_train, [*NEW, "--batch-size", "128"]), "gan-train", 2, "larger than the data set")
    after = snapshot(world)
    assert after.pop("runs") == "" and after == before  # neither new/ nor runs/<model>-<timestamp>/ is left


def test_default_names_in_the_same_second_are_unique(tmp_path, monkeypatch):
    """Sixteen runs started in one second (a sweep) each get their own folder, made exclusively."""
    monkeypatch.setattr(run_files.time, "strftime", lambda fmt: "20260101-000000")
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: run_files.default_run_dir("mlp", tmp_path / "runs"), range(16)))
    assert len(set(folders)) == 16 and all(folder.is_dir() for folder in folders)
    assert tmp_path / "runs" / "mlp-20260101-000000" in folders
    assert tmp_path / "runs" / "mlp-20260101-000000-16" in folders


def test_a_new_run_into_an_empty_folder_is_allowed(world):
    (world / "empty").mkdir()
    result = invoke(gan_train, [*NEW, "--out", "empty"])
    assert result.exit_code == 0, result.output
    assert (world / "empty" / "checkpoints" / "last.pt").is_file()
