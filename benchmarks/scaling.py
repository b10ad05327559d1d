"""Scaling on one machine: gan-train on 1 vs 2 gloo processes, and gan-sample's sharded job on 1 vs 2 workers.

(a) Training, at equal effective batch 64 on the seed MLP and MNIST: the anchor is one process with
    ``--batch-size 64`` (``python -m onnxgan.train``, torch's default threads), against ``python -m
    torch.distributed.run --standalone --nproc_per_node 2 -m onnxgan.train --batch-size 32`` (torchrun
    gives each rank OMP_NUM_THREADS=1), and one process with OMP_NUM_THREADS=1 to tell the threads'
    share from the processes'. All run the real command; steps/s is read from the run's
    metrics.jsonl between its first and last log rows, which leaves out start-up (imports, data set,
    process group) and the first-steps warm-up, and the files written after the last step.
(b) Sampling N images from the seed-shaped MLP (random weights, exported through gan-export's code
    path): the anchor is a plain ``gan-sample -n N -o x.npz`` (one call, all cores), against
    ``--shard-size S --workers 1`` and ``--workers 2``. samples/s is N over the whole process's wall
    time (start-up, spawn and writes included: what a user waits for); the job's own rate (its last
    line: the shards alone) is beside it.

Rounds are interleaved (the machine is shared and noisy); each cell is the median over rounds and
the ratio is the anchor's median time over the runner's (above 1: faster than the anchor).

    python benchmarks/scaling.py [--steps 200] [--rounds 3] [--samples 100000] [--shard-size 10000]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from onnxgan.export.onnx_export import export_generator
from onnxgan.train.config import ModelConfig
from onnxgan.train.models import build_models

BIN = Path(sys.executable).parent  # gan-sample lives beside the interpreter
TRAIN = [sys.executable, "-m", "onnxgan.train", "--model", "mlp", "--eval-every", "0", "--sample-every", "1000000",
         "--ckpt-every", "1000000"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def train_steps_per_s(command: list[str], env: dict[str, str], steps: int, out: Path) -> float:
    """Run a gan-train command for ``steps``; steady steps/s from its metrics between the first and last rows."""
    log_every = max(1, steps // 4)
    done = subprocess.run([*command, "--steps", str(steps), "--log-every", str(log_every), "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode:
        sys.exit(f"scaling.py: {' '.join(command[:6])}... failed:\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "wall_time" in row]
    first, last = rows[0], rows[-1]
    return (last["step"] - first["step"]) / (last["wall_time"] - first["wall_time"])


def sample_seconds(command: list[str]) -> tuple[float, float | None]:
    """(wall seconds of a gan-sample process, the rate its last line reports or None)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"scaling.py: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    reported = re.search(r"at (\d+) samples/s", done.stdout)
    return seconds, float(reported.group(1)) if reported else None


def seed_model(path: Path) -> None:
    """The seed MLP's G (100-256-512-1024-784), random init, through gan-export's code path."""
    torch.manual_seed(0)
    config = ModelConfig().resolved()
    path.write_bytes(export_generator(build_models(config)[0].eval(), config, step=0).data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100000)
    parser.add_argument("--shard-size", type=int, default=10000)
    parser.add_argument("--skip-train", action="store_true", help="Only the sampling half.")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), load average "
          f"{os.getloadavg()[0]:.1f} at start; {args.rounds} interleaved rounds", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_runners = {  # name: (command, environment changes)
            "1 process, batch 64": (TRAIN + ["--batch-size", "64"], {}),
            "2 gloo, batch 32 each": (TORCHRUN + ["-m", "onnxgan.train", *TRAIN[3:], "--batch-size", "32"], {}),
            "1 process, 1 thread": (TRAIN + ["--batch-size", "64"], {"OMP_NUM_THREADS": "1"}),
        }
        model = tmp / "model.onnx"
        seed_model(model)
        sample = [str(BIN / "gan-sample"), str(model), "-n", str(args.samples)]
        shards = [*sample, "--shard-size", str(args.shard_size)]
        sample_runners = {  # name: round -> command (each round writes a new output)
            "gan-sample -o x.npz": lambda r: [*sample, "-o", str(tmp / f"x{r}.npz")],
            "--workers 1": lambda r: [*shards, "-o", str(tmp / f"w1-{r}")],
            "--workers 2": lambda r: [*shards, "--workers", "2", "-o", str(tmp / f"w2-{r}")],
        }
        train_rates: dict[str, list[float]] = {name: [] for name in train_runners}
        sample_times: dict[str, list[tuple[float, float | None]]] = {name: [] for name in sample_runners}
        for r in range(args.rounds):
            if not args.skip_train:
                for i, (name, (command, env)) in enumerate(train_runners.items()):
                    train_rates[name].append(train_steps_per_s(command, env, args.steps, tmp / f"run{r}-{i}"))
                    print(f"round {r + 1}: {name:<22} {train_rates[name][-1]:7.2f} steps/s", flush=True)
            for name, command in sample_runners.items():
                sample_times[name].append(sample_seconds(command(r)))
                print(f"round {r + 1}: {name:<22} {sample_times[name][-1][0]:7.2f} s", flush=True)

    if not args.skip_train:
        print(f"\n(a) gan-train, seed MLP on MNIST, effective batch 64, {args.steps} steps, steady steps/s")
        print(f"{'runner':<24}{'steps/s':>9}{'samples/s':>11}{'ratio':>7}   rounds")
        anchor = statistics.median(train_rates[next(iter(train_rates))])
        for name, rates in train_rates.items():
            median = statistics.median(rates)
            print(f"{name:<24}{median:>9.2f}{median * 64:>11.0f}{median / anchor:>7.2f}   "
                  f"{', '.join(f'{x:.2f}' for x in rates)}")
    print(f"\n(b) gan-sample, seed MLP, {args.samples} images, shards of {args.shard_size}, whole process")
    print(f"{'runner':<24}{'seconds':>9}{'samples/s':>11}{'ratio':>7}{'job samples/s':>15}")
    anchor = statistics.median(seconds for seconds, _ in sample_times[next(iter(sample_times))])
    for name, results in sample_times.items():
        median = statistics.median(seconds for seconds, _ in results)
        reported = [rate for _, rate in results if rate is not None]
        job = f"{statistics.median(reported):>15.0f}" if reported else f"{'-':>15}"
        print(f"{name:<24}{median:>9.2f}{args.samples / median:>11.0f}{anchor / median:>7.2f}{job}")


if __name__ == "__main__":
    main()
