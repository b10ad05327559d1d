"""Errors that end a command with one line on stderr and a documented exit code (never a traceback).

Exit codes, the same for every command (README lists them):
  0  success
  1  a check failed (e.g. the exported ONNX disagrees with PyTorch)
  2  user mistake: bad option, bad or missing input file, unwritable output
  3  training diverged (NaN/Inf); the last good checkpoint is kept
  130 interrupted by Ctrl-C (training saves a checkpoint first); 143 likewise for SIGTERM
"""
from __future__ import annotations

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """Ends a command with its one-line message on stderr and ``exit_code``."""

    exit_code = EXIT_CHECK_FAILED


class UserError(CommandError):
    """A mistake the user can fix; the message says what is wrong and how to fix it."""

    exit_code = EXIT_USAGE


class CheckFailed(CommandError):
    """A self-check of the product refused to go on (the message carries the numbers)."""

    exit_code = EXIT_CHECK_FAILED


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none), for one-line messages
    about failures inside libraries that write several lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
