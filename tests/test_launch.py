"""The console scripts go through onnxgan.launch: a Ctrl-C or SIGTERM while a command is still importing
torch ends in one line and the documented exit code, never an import traceback."""
from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from kit import as_from_a_terminal

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
    # says torch's own import has begun and has most of its seconds still ahead.
    process = subprocess.Popen([sys.executable, "-X", "importtime", str(BIN / "gan-train"), "--steps", "1"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_terminal)
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


@pytest.mark.parametrize("script, args, module", [
    ("gan-train", ["--help"], "torch"),
    ("gan-train", [], "torch"),
    ("gan-export", ["--help"], "torch"),
    ("gan-export", ["run", "-o", "m.onnx"], "onnx"),
])
def test_a_command_without_its_extra_is_one_line_naming_it(tmp_path, script, args, module):
    """The base install (no torch, no onnx): a 23-line ``No module named 'torch'`` traceback, --help included."""
    code = (f"import sys; sys.modules[{module!r}] = None; sys.argv = [{script!r}, *{args!r}]; "
            f"from onnxgan.launch import {script.replace('-', '_')}; {script.replace('-', '_')}()")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"{script}: error: {script} needs {module}, which this install lacks: "
                                          "pip install torch 'onnxgan[train]'"]
    assert not any(tmp_path.iterdir())


def test_a_missing_module_of_no_extra_still_shows(tmp_path):
    """Only the extras' modules are a user's install to fix; any other missing module is a bug to see."""
    code = "import sys; sys.modules['click'] = None; from onnxgan.launch import gan_sample; gan_sample()"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" in result.stderr and "click" in result.stderr


def test_the_module_entry_point_names_the_extra_too(tmp_path):
    """``python -m onnxgan.train`` (torchrun's way in) goes through the same launcher."""
    code = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['gan-train', '--help']; "
            "runpy.run_module('onnxgan.train', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.splitlines() == [
        "gan-train: error: gan-train needs torch, which this install lacks: pip install torch 'onnxgan[train]'"]
