"""Two CPU processes under torchrun (gloo): identical replicas, one writer, exact resume."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from onnxgan.train.checkpoint import load_checkpoint

from kit import TINY_RUN

pytestmark = pytest.mark.slow  # torchrun with two processes: about 45 s on 2 cores

TINY = [*TINY_RUN, "--batch-size", "8", "--log-every", "2", "--sample-every", "100"]  # later options win


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180)


def test_replicas_stay_identical_after_every_step(tmp_path):
    result = torchrun(str(Path(__file__).with_name("ddp_replicas.py")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_process_run_writes_once_and_resumes_exactly(tmp_path):
    first = torchrun("-m", "onnxgan.train", *TINY, "--steps", "4", "--out", "half", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "half" / "checkpoints").iterdir()) == ["last.pt"]
    assert len((tmp_path / "half" / "metrics.jsonl").read_text().splitlines()) == 2  # rank 0 alone logs
    state = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.pt")
    assert state["step"] == 4 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["cpu"], state["rng"][1]["cpu"])  # per-rank streams

    resumed = torchrun("-m", "onnxgan.train", "--resume", "half", "--steps", "8", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = torchrun("-m", "onnxgan.train", *TINY, "--steps", "8", "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    a = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name}"
