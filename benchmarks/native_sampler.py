"""The native sampler against onnxruntime on the seed MLP generator (100-256-512-1024-784), one process.

For batch 1, 16, 64, 256, 4096 and threads 1 and 2, four runners compute the same images from the same z:

  native          onnxgan.runtime._native.Model, fp32 weights, its best kernel (or --kernel)
  native-fp16     the same with precision="float16" (weights stored as fp16, fp32 arithmetic)
  ort-spin        onnxruntime CPU, intra_op_num_threads=threads, spinning on (its default)
  ort-nospin      the same with spinning off

Rounds are interleaved across runners, with an idle gap before each (so no runner's spinning threads
steal the cores from the next); a cell is the best and the median over rounds of one round's mean time
per call. "spread" is that median over the best, minus 1: what waking threads, spinning and other
tenants cost a typical round. "p90 call" is the 90th percentile of single calls over all rounds;
"idle call" the median over rounds of a round's first call, which comes after the idle gap and finds
the native workers asleep: the latency of a call made now and then. "x ort" is the runner's
median over the better onnxruntime median of the same batch and threads (below 1: faster). With one
thread all the work runs on the calling thread, so "cpu us" (its best CPU time per call) and "x ort
cpu" show the cost of a call without the time that other tenants of a shared machine took the core.
GFLOP/s counts 2 * 1,483,776 FLOPs per sample. "% peak" is of the FMA peak that cpp/tests/fma_peak.cpp
measures on one core for the kernel's instruction set, times the threads (the probe is built with
cpp/; --probe finds it). "% sgemm" is of numpy's sgemm (OpenBLAS) on the same four layer shapes at the
same batch and thread count, measured in a subprocess (OPENBLAS_NUM_THREADS). "binding" is the cost of
one Model.generate call on an empty batch (argument checks, the output array, the model's mutex,
releasing the GIL; no kernel work): the Python binding's per-call overhead. The load average is
printed before and after: a run beside other work says little (docs/native.md; raise the run's
scheduling group weight with `echo -20 > /proc/$$/autogroup` in its shell). The goals of issue 15,
item 1 (two threads: batch 16 to 256 at >= 1.2x onnxruntime's throughput and >= 88% of the FMA peak,
batch 1 at <= 0.5x its latency; all on medians) are checked at the end.

    python benchmarks/native_sampler.py [--rounds 15] [--probe build/native/onnxgan_fma_peak] [--kernel avx2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from onnxgan.runtime import _native, latent

Runner = Callable[[np.ndarray], np.ndarray]  # z float32 (N, 100) -> images float32 (N, 1, 28, 28)
WIDTHS = (100, 256, 512, 1024, 784)
FLOPS_PER_SAMPLE = 2 * sum(a * b for a, b in zip(WIDTHS, WIDTHS[1:]))  # 2,967,552
ROUND_SECONDS = 0.04  # each round of one runner lasts about this long
IDLE_GAP = 0.03  # before each runner's round: the previous runner's spinning threads go to sleep

SGEMM = """
import sys, time, numpy as np
n, rounds, widths = int(sys.argv[1]), int(sys.argv[2]), [int(w) for w in sys.argv[3:]]
rng = np.random.default_rng(0)
x0 = rng.standard_normal((n, widths[0]), dtype=np.float32)
ws = [rng.standard_normal((a, b), dtype=np.float32) for a, b in zip(widths, widths[1:])]
calls = max(1, int(0.03 / (2e-10 * max(n, 1) * sum(w.size for w in ws) + 2e-5)))
best = float("inf")
for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(calls):
        x = x0
        for w in ws:
            x = x @ w
    best = min(best, (time.perf_counter() - start) / calls)
print(best)
"""


def default_model() -> bytes:
    """The seed generator with fresh random weights, through gan-export's own code path (needs torch)."""
    import torch

    from onnxgan.export.onnx_export import export_generator
    from onnxgan.train.config import ModelConfig
    from onnxgan.train.models import build_models

    torch.manual_seed(0)
    config = ModelConfig().resolved()  # mlp: 100-256-512-1024-784
    return export_generator(build_models(config)[0], config, step=0, weights_dtype="float32").data


def ort_runner(data: bytes, threads: int, spinning: bool) -> Runner:
    """A Runner on one onnxruntime session; it also takes labels (N,) as a second argument for conditional
    models (benchmarks/native_conv.py)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    return lambda z, labels=None: session.run(["image"], {"z": z} if labels is None else {"z": z, "label": labels})[0]


def fma_peak(probe: Path | None) -> dict[str, float]:
    """One core's FMA peak in GFLOP/s, {"avx2": ..., "avx512": ...}, from the probe; {} without one."""
    if probe is None or not probe.exists():
        return {}
    return json.loads(subprocess.run([str(probe)], check=True, capture_output=True, text=True).stdout)


def sgemm_gflops(batch: int, threads: int, rounds: int) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    args = [sys.executable, "-c", SGEMM, str(batch), str(rounds), *map(str, WIDTHS)]
    seconds = float(subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout)
    return FLOPS_PER_SAMPLE * batch / seconds / 1e9


def binding_overhead(model: _native.Model) -> float:
    """Seconds per Model.generate call on a (0, 100) z: the binding's work without the kernel's."""
    z = np.zeros((0, WIDTHS[0]), np.float32)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2000):
            model.generate(z)
        best = min(best, (time.perf_counter() - start) / 2000)
    return best


Series = dict[str, list[float]]  # runner name -> one value per round or per call


def measure(runners: dict[str, Runner], z: np.ndarray, rounds: int) -> tuple[Series, Series, Series]:
    """Wall and calling-thread CPU seconds per call of each runner, one entry per round, rounds
    interleaved across runners; and the wall seconds of every single call."""
    calls = {}
    for name, run in runners.items():  # warm up, and size a round to about ROUND_SECONDS
        run(z)
        start = time.perf_counter()
        run(z)
        calls[name] = max(1, int(ROUND_SECONDS / max(time.perf_counter() - start, 1e-6)))
    times: Series = {name: [] for name in runners}
    cpu: Series = {name: [] for name in runners}
    single: Series = {name: [] for name in runners}
    for round_index in range(rounds):
        names = list(runners)
        names = names[round_index % len(names):] + names[:round_index % len(names)]  # rotate who goes first
        for name in names:
            time.sleep(IDLE_GAP)
            run, clock = runners[name], time.perf_counter
            ticks = [0.0] * (calls[name] + 1)
            start_cpu = time.thread_time()
            ticks[0] = clock()
            for i in range(calls[name]):
                run(z)
                ticks[i + 1] = clock()
            times[name].append((ticks[-1] - ticks[0]) / calls[name])
            cpu[name].append((time.thread_time() - start_cpu) / calls[name])
            single[name] += list(np.diff(ticks))
    return times, cpu, single


def parse_arguments(description: str, batches: str, model_help: str) -> argparse.Namespace:
    """The options this benchmark and benchmarks/native_conv.py share."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", default=batches)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--probe", type=Path, default=Path("build/native/onnxgan_fma_peak"),
                        help="the FMA peak probe built with cpp/ (cmake -S cpp -B build/native)")
    parser.add_argument("--model", type=Path, help=model_help)
    parser.add_argument("--kernel", default="auto", choices=["auto", "avx512", "avx2", "portable"],
                        help="the native kernel (auto: the widest this CPU has)")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments(__doc__.splitlines()[0], "1,16,64,256,4096",
                           "an MLP generator model.onnx (default: the seed shapes, random)")
    data = args.model.read_bytes() if args.model else default_model()
    peak = fma_peak(args.probe)
    kernel = _native.Model.from_bytes(data, threads=1, kernel=args.kernel).kernel
    print(f"native kernel: {kernel}; FMA peak GFLOP/s of one core: {peak or 'not measured (no --probe)'}; "
          f"onnxruntime {ort.__version__}; {args.rounds} rounds; load average before: {os.getloadavg()[0]:.2f}")
    binding = binding_overhead(_native.Model.from_bytes(data, threads=1, kernel=kernel))
    print(f"binding: {binding * 1e6:.2f} us per Model.generate call (empty batch)")
    header = (f"{'batch':>5} {'thr':>3} {'runner':<12} {'best us':>10} {'median us':>10} {'spread':>7} "
              f"{'p90 call':>9} {'idle call':>9} {'samples/s':>10} {'GFLOP/s':>8} {'% peak':>7} {'% sgemm':>8} "
              f"{'x ort':>6} {'cpu us':>9} {'x ort cpu':>9}")
    goals = []
    print(header)
    for threads in [int(t) for t in args.threads.split(",")]:
        native = {"threads": threads, "kernel": kernel}
        runners = {"native": _native.Model.from_bytes(data, precision="float32", **native).generate,
                   "native-fp16": _native.Model.from_bytes(data, precision="float16", **native).generate,
                   "ort-spin": ort_runner(data, threads, True), "ort-nospin": ort_runner(data, threads, False)}
        for batch in [int(b) for b in args.batches.split(",")]:
            z = latent(batch, WIDTHS[0], seed=batch)  # (batch, 100)
            reference = runners["ort-spin"](z)
            for name in ("native", "native-fp16"):
                error = float(np.abs(runners[name](z) - reference).max())
                assert error <= (1e-4 if name == "native" else 2e-3), f"{name} batch {batch}: max error {error:.2g}"
            rounds = max(3, args.rounds // 3) if batch >= 4096 else args.rounds
            times, cpu, single = measure(runners, z, rounds)
            round_starts = {name: range(0, len(single[name]), len(single[name]) // rounds) for name in single}
            medians = {name: statistics.median(t) for name, t in times.items()}
            ort_best = min(medians["ort-spin"], medians["ort-nospin"])
            ort_cpu = min(min(cpu["ort-spin"]), min(cpu["ort-nospin"]))
            sgemm = sgemm_gflops(batch, threads, rounds)
            isa_peak = threads * peak[kernel] if kernel in peak else None
            for name, t in times.items():
                gflops = FLOPS_PER_SAMPLE * batch / min(t) / 1e9
                if name == "native" and threads == 2 and isa_peak:
                    median_gflops = FLOPS_PER_SAMPLE * batch / medians[name] / 1e9
                    goals.append((batch, ort_best / medians[name], 100 * median_gflops / isa_peak))
                peak_text = f"{100 * gflops / isa_peak:6.0f}%" if isa_peak and name.startswith("native") else ""
                # One thread: all the work is on the calling thread, so its CPU time is the cost of a call
                # without the time other tenants of the machine took the core.
                cpu_text = f"{min(cpu[name]) * 1e6:9.1f} {min(cpu[name]) / ort_cpu:9.2f}" if threads == 1 else ""
                print(f"{batch:5d} {threads:3d} {name:<12} {min(t) * 1e6:10.1f} {medians[name] * 1e6:10.1f} "
                      f"{100 * (medians[name] / min(t) - 1):6.0f}% {np.percentile(single[name], 90) * 1e6:9.1f} "
                      f"{statistics.median(single[name][start] for start in round_starts[name]) * 1e6:9.1f} "
                      f"{batch / min(t):10.0f} {gflops:8.1f} {peak_text:>7} {100 * gflops / sgemm:7.0f}% "
                      f"{medians[name] / ort_best:6.2f} {cpu_text}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for batch, speedup, percent in goals:  # issue 15, item 1, on medians
        if batch == 1:
            print(f"goal batch 1, 2 threads: native fp32 latency {1 / speedup:.2f}x onnxruntime's (goal <= 0.5x)")
        elif 16 <= batch <= 256:
            print(f"goal batch {batch}, 2 threads: native throughput {speedup:.2f}x onnxruntime's (goal >= 1.2x) "
                  f"at {percent:.0f}% of the {kernel} FMA peak on its median (goal >= 88%)")


if __name__ == "__main__":
    main()
