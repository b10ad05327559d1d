"""What every attack row checks, in-process (click's CliRunner): the documented exit code, exactly one line
on stderr that starts with ``COMMAND: error:`` and names the fault, no traceback, and nothing touched.

The rows that need a real process (hangs, memory bombs, signals) live in tests/test_bad_inputs.py.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner, Result

TRAIN = ["--g-hidden", "16,32", "--d-hidden", "32,16", "--batch-size", "16", "--latent-dim", "8", "--eval-every",
         "0", "--steps", "2", "--device", "cpu"]


def invoke(main, args: list) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_refused(result: Result, command: str, code: int, words: str) -> None:
    """One line ``command: error: ...words...``, exit ``code``, no exception escaped."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code == code, result.stderr or result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith(f"{command}: error: ") and words in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` -> the sha256 of its bytes ("" for folders): a changed byte shows."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(folder.rglob("*"))}
