"""Errors that end a command with one line on stderr and a documented exit code (never a traceback).

Exit codes, the same for every command (README lists them):
  0  success
  1  a check failed (e.g. the exported ONNX disagrees with PyTorch, or a model produced NaN/Inf)
  2  user mistake: bad option, bad or missing input file, unwritable output
  3  training diverged (NaN/Inf); the last good checkpoint is kept
  4  the training run failed (D won outright, G's output constant or saturated at the end); all files are kept
  130 interrupted by Ctrl-C (training saves a checkpoint first); 143 likewise for SIGTERM and 129 for
      SIGHUP (a closed terminal): 128 + the signal's number, as a shell reports it (Terminated)
"""
from __future__ import annotations

import signal
from typing import Any, NoReturn

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_FAILED_RUN = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process that SIGTERM ended
# The signals that ask a command to stop, handled alike: SIGTERM, and SIGHUP where the OS has it (the
# terminal closed: a training run saves its checkpoint, as for SIGTERM, rather than dying without one).
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """SIGTERM or SIGHUP (TERMINATING), raised like Ctrl-C's KeyboardInterrupt (a BaseException, so that no
    ``except Exception`` swallows it, and every clean-up in a ``finally`` or ``except BaseException`` runs:
    staging folders, temp files, worker pools); commands end with one line and ``exit_code``."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        return f"terminated ({signal.Signals(self.signum).name})"


def raise_terminated(signum: int, frame: Any) -> NoReturn:
    """The handler of TERMINATING in every command (and in the launcher while it imports one): the signal
    unwinds like Ctrl-C, running the same clean-ups."""
    raise Terminated(signum)


class CommandError(Exception):
    """Ends a command with its one-line message on stderr and ``exit_code``."""

    exit_code = EXIT_CHECK_FAILED


class UserError(CommandError):
    """A mistake the user can fix; the message says what is wrong and how to fix it."""

    exit_code = EXIT_USAGE


class CheckFailed(CommandError):
    """A self-check of the product refused to go on (the message carries the numbers)."""

    exit_code = EXIT_CHECK_FAILED


def printable(text: str) -> str:
    """``text`` with newlines, terminal escapes and other non-printing characters escaped (``\\n``,
    ``\\x1b``), for messages that quote a file's contents: one line stays one line, no escape runs."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none), for one-line messages
    about failures inside libraries that write several lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
