"""The CUDA paths, on a GPU (marked ``cuda``; benchmarks/gpu_check.py runs ``pytest -m cuda`` on this file):
the default recipe's steps with --amp bf16, --compile and --cuda-graph against eager steps, an exact
resume, the Sampler's refusal of device="cuda" where onnxruntime is the CPU build, and G on the GPU
against its model.onnx on onnxruntime's CPU. Without CUDA they are skipped with the reason; the last
test checks the GPU check's own refusal, so it runs only where there is no CUDA.

Each takes seconds on a GPU (--compile pays its first compilation). All passed on an H200 on 2026-11-30
(docs/gpu.md).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from kit import tensors_of, tiny_config, write_checkpoint
from onnxgan.errors import UserError
from onnxgan.export.onnx_export import TOLERANCE, export_checkpoint
from onnxgan.runtime import Sampler, latent
from onnxgan.train.checkpoint import load_checkpoint
from onnxgan.train.cli import main as gan_train
from onnxgan.train.config import ModelConfig
from onnxgan.train.models import build_models

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: torch.cuda.is_available() is False here")
STEPS = 8  # --cuda-graph: 3 eager warm-up steps (CapturedStep.WARMUP_STEPS), then the capture and 5 replays
# flags, and the largest drift allowed from eager's update: |update - eager's| / |eager's|, over every float
# tensor of G, D and G_ema after STEPS steps from the same seed and batches. Same arithmetic, other kernels:
# rounding only. bf16 autocast changes every forward pass, so its update need only be finite and alike in size.
# --compile's first compilation makes it the slowest test: it comes last (and its test last in the file), so
# that a check stopped at its budget has the other results.
MODES = {"cuda-graph": (["--cuda-graph", "on"], 1e-3), "amp-bf16": (["--amp", "bf16"], None), "compile": (["--compile"], 2e-2)}


def train(out: Path, *args: str, steps: int = STEPS) -> dict:
    """gan-train with no recipe options (the default recipe) on the GPU, no in-training scores; its last checkpoint."""
    result = CliRunner().invoke(gan_train, ["--device", "cuda", "--steps", str(steps), "--eval-every", "0",
                                            "--out", str(out), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return load_checkpoint(out / "checkpoints" / "last.pt")


def weights(state: dict) -> torch.Tensor:
    """Every float tensor of G, D and G_ema (weights and BatchNorm statistics) as one float64 vector."""
    return torch.cat([t.flatten().double() for key in ("G", "D", "G_ema")
                      for t in state[key].values() if t.is_floating_point()])


def initial_weights(state: dict) -> torch.Tensor:
    """``weights`` as gan-train starts them: models built right after seeding, G_ema a copy of G."""
    torch.manual_seed(state["train_config"]["seed"])
    G, D = build_models(ModelConfig.from_dict(state["model_config"]))
    return weights({"G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict()})


@pytest.fixture(scope="module")
def eager(tmp_path_factory) -> Path:
    """The default recipe's run of STEPS eager steps on the GPU: its last checkpoint."""
    run = tmp_path_factory.mktemp("eager") / "run"
    train(run, "--cuda-graph", "off")
    return run / "checkpoints" / "last.pt"


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("graph", ["auto", "off"])  # auto: captured (the default); the resume re-captures
def test_resume_on_cuda_continues_bit_for_bit(tmp_path, graph):
    whole = train(tmp_path / "whole", "--seed", "3", "--cuda-graph", graph)
    again = train(tmp_path / "again", "--seed", "3", "--cuda-graph", graph)
    train(tmp_path / "half", "--seed", "3", "--cuda-graph", graph, steps=STEPS // 2)
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["cuda_graph"] is (graph == "auto")
    resumed = CliRunner().invoke(gan_train, ["--resume", str(tmp_path / "half"), "--steps", str(STEPS)])
    assert resumed.exit_code == 0, resumed.output
    resumed_state = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.pt")
    assert len(whole["rng"][0]["cuda"]) == torch.cuda.device_count()  # the CUDA generators are saved
    ta, tb, tr = tensors_of(whole), tensors_of(again), tensors_of(resumed_state)
    assert ta.keys() == tb.keys() == tr.keys() and len(ta) > 10
    for name in ta:  # a resume cannot be exact where two identical runs differ
        assert torch.equal(ta[name], tb[name]), f"{name}: two identical CUDA runs differ (a nondeterministic kernel)"
    for name in ta:
        assert torch.equal(ta[name], tr[name]), f"{name}: the resumed run differs from the uninterrupted one"
    assert [(s["step"], s["epoch"], s["batch_in_epoch"]) for s in (whole, resumed_state)] == [(STEPS, 0, STEPS)] * 2
    for a, b in zip(whole["rng"][0]["cuda"], resumed_state["rng"][0]["cuda"]):
        assert torch.equal(a, b)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                    reason="this onnxruntime has a CUDA provider (onnxruntime-gpu)")
def test_sampler_refuses_cuda_when_onnxruntime_is_the_cpu_build(tiny_model):
    """The GPU machine's case: PyTorch sees the GPU, onnxruntime cannot use it."""
    with pytest.raises(UserError, match=r"--device cuda: onnxruntime finds no usable CUDA GPU here \(needs onnxruntime-gpu"):
        Sampler(tiny_model, device="cuda")
    info = Sampler(tiny_model).info()  # auto: the CPU, and info() says why
    assert (info["backend"], info["backend_reason"]) == (
        "native", "auto: the native reader takes it and the model runs on the CPU")


def assert_g_on_cuda_matches_its_export(checkpoint: Path, monkeypatch) -> None:
    """G from ``checkpoint`` on the GPU vs its model.onnx on onnxruntime's CPU, within the export tolerance.
    TF32 off: that tolerance is for float32 arithmetic (TF32 keeps 10 mantissa bits)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    exported = export_checkpoint(checkpoint, "float32")  # checked on the CPU against PyTorch there
    state = load_checkpoint(checkpoint)
    config = ModelConfig.from_dict(state["model_config"])
    G = build_models(config)[0]
    G.load_state_dict(state[exported.weights])
    G = G.cuda().eval()
    z = latent(64, config.latent_dim, 7)  # (64, latent_dim)
    labels = np.arange(64, dtype=np.int64) % config.num_classes if config.num_classes else None  # (64,) or None
    ours = Sampler(exported.data, backend="onnxruntime", device="cpu").generate(z, labels)  # (64, C, H, W)
    with torch.no_grad():
        theirs = G(torch.from_numpy(z).cuda(), None if labels is None else torch.from_numpy(labels).cuda()).cpu().numpy()
    error = float(np.abs(ours - theirs).max())
    assert error <= TOLERANCE, f"{config.name}: G on CUDA vs model.onnx on the CPU: max |diff| {error:.2e}"


@pytest.mark.cuda
@needs_cuda
def test_default_recipe_trained_on_cuda_matches_its_export(eager, monkeypatch):
    assert_g_on_cuda_matches_its_export(eager, monkeypatch)


@pytest.mark.cuda
@needs_cuda
def test_dcgan_on_cuda_matches_its_export(tmp_path, monkeypatch):
    """Convolutions (cuDNN) and BatchNorm folded into them, with random BatchNorm statistics."""
    assert_g_on_cuda_matches_its_export(write_checkpoint(tmp_path / "dcgan.pt", tiny_config("dcgan"), seed=5),
                                        monkeypatch)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("mode", MODES)
def test_default_recipe_steps_follow_eager_steps(tmp_path, eager, mode):
    flags, tolerance = MODES[mode]
    state = train(tmp_path / "run", *flags)
    assert state["step"] == STEPS
    start, ours = initial_weights(state), weights(state)
    update, eager_update = ours - start, weights(load_checkpoint(eager)) - start
    assert torch.isfinite(ours).all(), f"{mode}: NaN/Inf in the weights"
    size = float(update.norm() / eager_update.norm())
    assert 0.5 < size < 2, f"{mode}: the update is {size:.2f}x the size of eager's (0: nothing was trained)"
    drift = float((update - eager_update).norm() / eager_update.norm())
    if tolerance is not None:
        assert drift <= tolerance, f"{mode}: the update drifts {drift:.2e} from eager's (allowed {tolerance:g})"


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("model", [["--model", "mlp", "--no-cond"], ["--model", "dcgan"]])
def test_captured_steps_follow_eager_steps_for_other_models(tmp_path, model, monkeypatch):
    """--cuda-graph auto also captures the unconditional MLP and the conv GAN (BatchNorm in G and D, dropout).
    cuDNN deterministic: its default algorithms make two eager dcgan runs differ by 1.5e-3 after 8 steps
    (measured on an H200), more than rounding; with them fixed, the captured run equals eager's exactly."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    graph, eager = (train(tmp_path / name, *model, "--cuda-graph", mode) for name, mode in (("graph", "on"), ("eager", "off")))
    start = initial_weights(graph)
    update, eager_update = weights(graph) - start, weights(eager) - start
    drift = float((update - eager_update).norm() / eager_update.norm())
    assert torch.isfinite(update).all() and drift <= MODES["cuda-graph"][1], f"{model}: drift {drift:.2e}"


@pytest.mark.skipif(CUDA, reason="the GPU check refuses only where PyTorch sees no CUDA device")
def test_gpu_check_refuses_without_cuda_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("gpu_check: ") and "CUDA" in result.stderr
    assert not (tmp_path / "out").exists()
