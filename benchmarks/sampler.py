"""µs per call and samples/s of the sampling engines on the seed MLP generator, in one process.

The seed shapes (G 100-256-512-1024-784, fp32, random init) are exported once through gan-export's own
code path; every runner then computes the same images from the same z:

  ort-default     onnxruntime CPU, default session options (all cores, spinning on): the anchor
  ort-2t-spin     onnxruntime CPU, intra_op_num_threads=2, spinning on
  ort-2t-nospin   onnxruntime CPU, intra_op_num_threads=2, spinning off
  torch-eager     the same weights in PyTorch eager mode, inference_mode, torch's default threads
  native          the C++ kernel (onnxgan.runtime._native), fp32 weights, all cores
  native-fp16     the same with fp16 weight storage (fp32 arithmetic)

Rounds are interleaved across runners (the machine is shared and noisy). Each cell is the best and
the median over rounds of one round's mean time per call; the ratio is ort-default's median over the
runner's (above 1: faster than onnxruntime's defaults); max |diff| is against ort-default's images.

    python benchmarks/sampler.py [--rounds 7] [--batches 1,16,256,4096]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch

from onnxgan.export.onnx_export import export_generator
from onnxgan.runtime import _native, latent
from onnxgan.train.config import ModelConfig
from onnxgan.train.models import build_models

Runner = Callable[[np.ndarray], np.ndarray]  # z float32 (N, 100) -> images float32 (N, 1, 28, 28)
ROUND_SECONDS = 0.05  # each round of one runner lasts about this long
# Before each runner's round the process idles, so the thread pools of the runner before it (ORT's
# spinning workers, torch's OpenMP team) stop spinning and do not steal the 2 cores from the next one.
IDLE_GAP = 0.05


def ort_runner(data: bytes, threads: int | None = None, spinning: bool | None = None) -> Runner:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    return lambda z: session.run(["image"], {"z": z})[0]


def torch_runner(generator: torch.nn.Module) -> Runner:
    def run(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return generator(torch.from_numpy(z)).numpy()
    return run


def build_runners() -> dict[str, Runner]:
    """Named runners over one set of seed-shaped weights; the first is the anchor of every ratio."""
    torch.manual_seed(0)
    config = ModelConfig().resolved()  # mlp: 100-256-512-1024-784
    generator = build_models(config)[0].eval()
    data = export_generator(generator, config, step=0, weights_dtype="float32").data
    runners = {
        "ort-default": ort_runner(data),
        "ort-2t-spin": ort_runner(data, threads=2, spinning=True),
        "ort-2t-nospin": ort_runner(data, threads=2, spinning=False),
        "torch-eager": torch_runner(generator),
        "native": _native.Model.from_bytes(data, precision="float32").generate,
        "native-fp16": _native.Model.from_bytes(data, precision="float16").generate,
    }
    # GFLOP/s, % of the FMA peak, thread counts and calling-thread CPU time: benchmarks/native_sampler.py.
    return runners


def measure(runners: dict[str, Runner], batch: int, rounds: int) -> dict[str, tuple[list[float], float]]:
    """Per runner: (seconds per call in each round, max abs difference from the anchor's images)."""
    z = latent(batch, 100, 0)  # (batch, 100)
    anchor = next(iter(runners.values()))(z)
    errors = {name: float(np.abs(run(z) - anchor).max()) for name, run in runners.items()}  # also warms up
    start = time.perf_counter()
    anchor_calls = 0
    while time.perf_counter() - start < ROUND_SECONDS or anchor_calls == 0:
        next(iter(runners.values()))(z)
        anchor_calls += 1
    calls = anchor_calls  # the same number of calls for every runner in a round
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            time.sleep(IDLE_GAP)
            start = time.perf_counter()
            for _ in range(calls):
                run(z)
            times[name].append((time.perf_counter() - start) / calls)
    return {name: (times[name], errors[name]) for name in runners}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", default="1,16,256,4096")
    args = parser.parse_args()
    runners = build_runners()
    anchor = next(iter(runners))
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{args.rounds} interleaved rounds; ratio = {anchor} median / runner median")
    header = f"{'batch':>5}  {'runner':<14} {'best µs/call':>13} {'median µs/call':>15} {'samples/s':>11} " \
             f"{'ratio':>6} {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    for batch in (int(b) for b in args.batches.split(",")):
        results = measure(runners, batch, args.rounds)
        anchor_median = statistics.median(results[anchor][0])
        for name, (seconds, error) in results.items():
            median = statistics.median(seconds)
            print(f"{batch:>5}  {name:<14} {min(seconds) * 1e6:>13.1f} {median * 1e6:>15.1f} "
                  f"{batch / median:>11.0f} {anchor_median / median:>6.2f} {error:>10.1e}")


if __name__ == "__main__":
    main()
