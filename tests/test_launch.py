"""The console scripts go through onnxgan.launch: a Ctrl-C or SIGTERM while a command is still importing
torch ends in one line and the documented exit code, never an import traceback."""
from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from onnxgan.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_every_console_script_goes_through_the_launcher():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts and all(target.startswith("onnxgan.launch:") for target in scripts.values())
    for name in scripts:  # the installed script is the launcher's too (reinstall after editing pyproject)
        assert "onnxgan.launch" in (BIN / name).read_text(), name


def test_the_launcher_imports_no_heavy_module():
    code = ("import sys, onnxgan.launch; "
            "print(sorted(m for m in ('torch', 'numpy', 'click', 'onnx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("signum, code, message", [
    (signal.SIGINT, EXIT_INTERRUPTED, "gan-train: error: interrupted"),
    (signal.SIGTERM, EXIT_TERMINATED, "gan-train: error: terminated (SIGTERM)"),
])
def test_a_signal_while_torch_imports_is_one_line(tmp_path, signum, code, message):
    # -X importtime reports each module as its import ends, so the first line naming torch's submodules
    # says torch's own import has begun and has most of its seconds still ahead. The child gets SIGINT's
    # default disposition, as from a terminal: a test run started in the background of a script inherits
    # it ignored, and Python then leaves it ignored.
    process = subprocess.Popen([sys.executable, "-X", "importtime", str(BIN / "gan-train"), "--steps", "1"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "torch." in line:
            process.send_signal(signum)
            break
    _, rest = process.communicate(timeout=60)
    said = [line for line in lines + rest.splitlines(keepends=True) if not line.startswith("import time:")]
    assert process.returncode == code, "".join(said)
    assert [line.strip() for line in said] == [message]
    assert not any(tmp_path.iterdir())  # nothing written: the command never started
