"""GPU figures: gan-train's step in eager mode vs --compile vs --cuda-graph, and sampling with onnxruntime's
CUDA provider vs PyTorch eager on the same GPU. Needs CUDA; without it, one line and exit 2.

(a) Training: three ``GANTrainer``s (the class gan-train runs) from one seed, TrainConfig(compile=...,
    cuda_graph=...), each fed the same pool of random device-resident batches (no data loading, no host
    copies). Each is warmed up first (compilation; the CUDA graph's eager steps and capture), then
    timed between ``torch.cuda.synchronize()`` calls. Anchor: eager. The losses read after the last
    round are printed beside the figures: all three must be finite and alike.
(b) Sampling the same G (random init, exported through gan-export's code path): ``Sampler(device="cuda")``
    (onnxruntime, I/O binding, numpy in and out) against the same weights in PyTorch eager
    (``inference_mode``; z copied to the GPU and images back, as the Sampler does). Anchor: torch eager.
    max |diff| is between the two outputs on the same z.

Rounds are interleaved; each cell is the median over rounds, the ratio the anchor's median time over the
runner's (above 1: faster). Written without a GPU at hand (none in this project's machines): never run.

    python benchmarks/gpu.py [--model mlp] [--batch-size 64] [--amp none|bf16] [--steps 200] [--rounds 5]
                             [--batches 256,4096]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import numpy as np
import torch

from onnxgan.errors import UserError
from onnxgan.export.onnx_export import export_generator
from onnxgan.runtime import Sampler, latent
from onnxgan.train.config import ModelConfig, TrainConfig
from onnxgan.train.models import build_models
from onnxgan.train.trainer import GANTrainer

MODES = {"eager": {}, "compile": {"compile": True}, "cuda-graph": {"cuda_graph": True}}
POOL = 8  # distinct random batches each trainer cycles through
WARMUP_STEPS = 10  # > CapturedStep.WARMUP_STEPS + 1 (its capture), and enough for torch.compile's first graphs


def train_rates(model_config: ModelConfig, batch_size: int, amp: str, steps: int, rounds: int) -> None:
    device = torch.device("cuda")
    shape = model_config.image_shape
    batches = [(torch.rand(batch_size, *shape, device=device) * 2 - 1, None) for _ in range(POOL)]  # (B, C, H, W)
    trainers = {}
    for name, flags in MODES.items():
        torch.manual_seed(0)
        trainers[name] = GANTrainer(model_config, TrainConfig(batch_size=batch_size, amp=amp, **flags), device)
    done = dict.fromkeys(trainers, 0)

    def run(name: str, count: int) -> float:
        trainer = trainers[name]
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(count):
            trainer.step([batches[done[name] % POOL]], done[name])
            done[name] += 1
        torch.cuda.synchronize()
        return time.perf_counter() - start

    for name in trainers:
        run(name, WARMUP_STEPS)
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name in trainers:
            seconds[name].append(run(name, steps))
    print(f"\n(a) GANTrainer.step, {model_config.name}, batch {batch_size}, amp {amp}, {steps} steps x {rounds} rounds")
    print(f"{'mode':<12}{'steps/s':>10}{'ratio':>7}{'d_loss':>9}{'g_loss':>9}")
    anchor = statistics.median(seconds["eager"])
    for name, trainer in trainers.items():
        median = statistics.median(seconds[name])
        stats = trainer.read_stats()  # means since the last read: every step of the run
        print(f"{name:<12}{steps / median:>10.1f}{anchor / median:>7.2f}{stats['d_loss']:>9.3f}{stats['g_loss']:>9.3f}")


def sample_rates(model_config: ModelConfig, batch_sizes: list[int], rounds: int) -> None:
    torch.manual_seed(0)
    G = build_models(model_config)[0].eval()
    data = export_generator(G, model_config, step=0).data  # exports from the CPU copy, checked there
    G = G.cuda()
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

    def torch_eager(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return G(torch.from_numpy(z).cuda()).cpu().numpy()

    runners["torch-eager"] = torch_eager
    try:
        runners["ort-cuda"] = Sampler(data, backend="onnxruntime", device="cuda").generate
    except UserError as e:
        print(f"(b) onnxruntime CUDA skipped: {e}")
    print(f"\n(b) sampling {model_config.name}, z -> float32 images on the host, {rounds} rounds")
    print(f"{'batch':>6}  {'runner':<12}{'ms/call':>9}{'samples/s':>12}{'ratio':>7}{'max |diff|':>11}")
    for batch in batch_sizes:
        z = latent(batch, model_config.latent_dim, 0)  # (batch, latent_dim)
        reference = runners["torch-eager"](z)
        errors = {name: float(np.abs(run(z) - reference).max()) for name, run in runners.items()}  # warms up too
        seconds: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                for _ in range(10):
                    run(z)
                seconds[name].append((time.perf_counter() - start) / 10)
        anchor = statistics.median(seconds["torch-eager"])
        for name in runners:
            median = statistics.median(seconds[name])
            print(f"{batch:>6}  {name:<12}{median * 1e3:>9.2f}{batch / median:>12.0f}{anchor / median:>7.2f}"
                  f"{errors[name]:>11.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "mlp-bn", "dcgan"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--amp", default="none", choices=["none", "bf16"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", default="256,4096", help="Sampling batch sizes.")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu.py: PyTorch sees no CUDA device here; run it on a machine with a GPU", file=sys.stderr)
        sys.exit(2)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    model_config = ModelConfig(name=args.model).resolved()
    train_rates(model_config, args.batch_size, args.amp, args.steps, args.rounds)
    sample_rates(model_config, [int(b) for b in args.batches.split(",")], args.rounds)


if __name__ == "__main__":
    main()
