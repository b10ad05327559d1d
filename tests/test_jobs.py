"""The house's folder lock and signal flag (src/onnxgan/jobs.py), which training (train/run_files.py) and
shard jobs (runtime/shards.py) share: one holder per folder, a moved folder noticed, signals turned into a
flag only where they would have stopped the job, and every handler given back."""
from __future__ import annotations

import os
import signal

import pytest

from onnxgan.errors import TERMINATING, UserError, raise_terminated
from onnxgan.jobs import LOCK, FolderLock, holds_files, signal_flag


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path):
    folder = tmp_path / "made" / "here"
    with FolderLock(folder, "-o out", "another job is writing there"):
        assert (folder / LOCK).is_file() and not holds_files(folder)  # the lock alone is no file of the job's
        with pytest.raises(UserError, match="^-o out: another job is writing there$"):
            with FolderLock(folder, "-o out", "another job is writing there"):
                pass
    with FolderLock(folder, "-o out", "busy"):  # released on exit
        (folder / "a").write_text("x")
        assert holds_files(folder)


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write there"):
        with FolderLock(tmp_path / "file" / "sub", "-o sub", "busy"):
            pass


def test_check_notices_a_folder_moved_while_held(tmp_path):
    with FolderLock(tmp_path / "job", "-o job", "busy") as lock:
        lock.check()  # still the locked file
        os.rename(tmp_path / "job", tmp_path / "moved")
        with pytest.raises(UserError, match="deleted or moved"):
            lock.check()


@pytest.fixture
def handlers():
    """The handlers of SIGINT and TERMINATING before the test, put back after it."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, *TERMINATING)}
    yield before
    for s, handler in before.items():
        signal.signal(s, handler)


def test_the_flag_records_the_first_signal_and_restores_the_handlers(handlers):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_terminated)
    with signal_flag() as received:
        assert received() is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # without second_interrupt_raises: only recorded
        assert received() == signal.SIGTERM
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is raise_terminated


def test_a_second_ctrl_c_raises_when_asked(handlers):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with signal_flag(second_interrupt_raises=True) as received:
        os.kill(os.getpid(), signal.SIGINT)
        assert received() == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_an_ignored_signal_or_a_callers_handler_stays(handlers):
    def callers(signum, frame):
        pass

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nohup, or a shell's background job
    signal.signal(signal.SIGINT, callers)
    with signal_flag() as received:
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN and signal.getsignal(signal.SIGINT) is callers
        os.kill(os.getpid(), signal.SIGTERM)
        assert received() is None
    assert signal.getsignal(signal.SIGINT) is callers
