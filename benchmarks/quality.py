"""Sample quality at equal CPU time: every recipe and preset beside the gan.py-style baseline.

Each recipe trains as a real ``gan-train`` process. Its budget is CPU time: the process's user + system
seconds (all its threads, read from /proc) divided by the cores it may use, so "150 s" means what 150 s
on an otherwise idle machine of this many cores buys, and a busy machine slows the run down without
changing its result. When the budget is spent the run gets SIGTERM (it saves a checkpoint and exits 143,
as a stopped job does). Checkpoints saved every ``--ckpt-every`` steps are scored afterwards to find
the CPU time each recipe takes to reach FID <= 2x the real-vs-real floor; the last checkpoint gives the
table's figures. Everything is scored by the shipped MNIST classifier metric on ``--samples`` samples
(balanced labels for conditional models). A recipe that sets its own length (a preset's steps or epochs, or
--steps / --epochs in --recipe: mlp-10min's 10000 steps, a tutorial's epochs) trains to that length or
to the budget, whichever comes first; the others (the default recipe, any --recipe without a length)
train until the budget is spent. The baseline (benchmarks/train_speed.py's gan.py-style loop)
trains in this process, one thread per core, for the same budget.

    python benchmarks/quality.py [--budget 150] [--recipes default,keras-mlp,...] [--samples 5000]
        [--threads 1 --parallel 2]    # two recipes at once, one core each (the same CPU budget each)
        [--recipes '' --recipe 'ttur=--d-lr 1e-3' --recipe 'mbstd=--d-mbstd 4']   # any gan-train options

Goals (issue 11): the default recipe in about 3 minutes: every class >= 8%, recall >= 0.7, FID <= 3x
the floor; the unconditional G 100-256-512-1024-784 at 600 s: FID <= 1.5x the floor, recall >= 0.8;
conditional accuracy >= 99% at 600 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import LATENT, BaselineDiscriminator, BaselineGenerator, baseline_train  # noqa: E402

from onnxgan.errors import EXIT_FAILED_RUN
from onnxgan.images import to_uint8
from onnxgan.quality import Evaluator
from onnxgan.runtime import Sampler, _native, pretrained
from onnxgan.train.data import load_mnist
from onnxgan.train.presets import PRESETS, SCHEDULE

# The default recipe with its MLP G, the same recipe with the DCGAN G, and every preset.
RECIPES = {"default": [], "dcgan": ["--model", "dcgan"], **{name: ["--preset", name] for name in PRESETS}}
BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine() -> str:
    """Cores, the instruction set (as the native kernel's own CPU probe picks it) and torch."""
    isa = _native.Model.from_bytes(pretrained.path("mnist").read_bytes(), threads=1).kernel
    return f"{os.cpu_count()} cores, {platform.machine()} {isa}, torch {torch.__version__}"


def sets_its_length(args: list[str]) -> bool:
    """Whether gan-train options say how long to train: --steps, --epochs, or a preset that sets either."""
    if {"--steps", "--epochs"} & set(args):
        return True
    presets = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--preset"]
    return any(SCHEDULE & set(PRESETS[name].options) for name in presets if name in PRESETS)


class Training:
    """One gan-train process that ends at its own length or is stopped (SIGTERM) once it has used its CPU
    budget, whichever comes first."""

    def __init__(self, name: str, args: list[str], cpu_budget: float, threads: int, folder: Path, ckpt_every: int):
        self.name, self.run, self.cpu_budget = name, folder / name, cpu_budget
        length = [] if sets_its_length(args) else ["--steps", "10000000"]
        command = [str(BIN / "gan-train"), *args, *length, "--eval-every", "0", "--ckpt-every",
                   str(ckpt_every), "--sample-every", "100000000", "--log-every", "100", "--out", str(self.run)]
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # torch's intra-op threads
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env=environment)
        started = self.process.stderr.readline()  # "training ... -> run": data loaded, the clock starts
        if not started.startswith("training "):
            raise SystemExit(f"{name}: gan-train did not start: {started}{self.process.stderr.read()[-500:]}")
        self.begin = cpu_seconds(self.process.pid)

    def spent(self) -> bool:
        return cpu_seconds(self.process.pid) - self.begin >= self.cpu_budget

    def ended(self) -> bool:
        return self.process.poll() is not None

    def stop(self) -> tuple[Path, str]:
        """SIGTERM unless it has ended (not SIGINT: a shell starts a background job with SIGINT ignored,
        which gan-train inherits and keeps, so a benchmark run as `nohup ... &` never stopped); either way a run folder whose last.pt holds its final state, and
        "FAILED" (gan-train's exit 4: a failed state of train/health.py held at the end), "warned" (such a
        state began at some point) or "ok"."""
        stopped = not self.ended()
        if stopped:
            self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=600)
        if self.process.returncode not in ((128 + signal.SIGTERM,) if stopped else (0, EXIT_FAILED_RUN)):
            raise SystemExit(f"{self.name}: gan-train ended with {self.process.returncode}: {stderr[-500:]}")
        warned = any("warning:" in line and ("D wins" in line or "G's output" in line) for line in stderr.splitlines())
        return self.run, "FAILED" if self.process.returncode == EXIT_FAILED_RUN else "warned" if warned else "ok"


def train_all(recipes: list[str], cpu_budget: float, threads: int, parallel: int, folder: Path,
              ckpt_every: int) -> dict[str, tuple[Path, str]]:
    """Train each recipe for ``cpu_budget`` CPU seconds, ``parallel`` at a time; name -> (run folder, state)."""
    waiting, running, done = list(recipes), [], {}
    while waiting or running:
        while waiting and len(running) < parallel:
            name = waiting.pop(0)
            running.append(Training(name, RECIPES[name], cpu_budget, threads, folder, ckpt_every))
        time.sleep(0.2)
        for training in [t for t in running if t.ended() or t.spent()]:
            running.remove(training)
            done[training.name] = training.stop()
    return done


def score_checkpoint(checkpoint: Path, evaluator: Evaluator, samples: int) -> dict:
    model = checkpoint.with_suffix(".onnx")
    subprocess.run([str(BIN / "gan-export"), str(checkpoint), "-o", str(model)], check=True, capture_output=True)
    sampler = Sampler(model)
    labels = sampler.labels(samples, None)  # balanced 0, 1, 2, ... for conditional models, else None
    result = evaluator.evaluate(sampler.sample(samples, seed=0, labels=labels), requested_labels=labels, seed=0)
    model.unlink()
    return result


def time_to_target(run: Path, evaluator: Evaluator, samples: int, cores: int, factor: float = 2.0) -> float | None:
    """CPU seconds per core until the first step checkpoint with FID <= factor x floor (None: never)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cpu_at = {row["step"]: row["cpu_time"] for row in rows if "cpu_time" in row}
    for checkpoint in sorted(run.glob("checkpoints/step_*.pt")):
        step = int(checkpoint.stem.removeprefix("step_"))
        result = score_checkpoint(checkpoint, evaluator, samples)
        if result["fid"] <= factor * result["fid_floor"] and step in cpu_at:
            return cpu_at[step] / cores
    return None


def baseline_for(budget: float, cores: int, evaluator: Evaluator, samples: int) -> tuple[dict, int]:
    data = load_mnist("train")
    dataset = TensorDataset(torch.from_numpy(data.images).float().div(127.5).sub(1.0))
    torch.manual_seed(0)
    generator, discriminator = BaselineGenerator(), BaselineDiscriminator()
    steps = baseline_train(generator, discriminator, dataset, torch.device("cpu"), seconds=budget,
                           timer=lambda: time.process_time() / cores)  # the same CPU budget as the recipes
    generator.eval()
    with torch.no_grad():
        images = generator(torch.randn(samples, LATENT, generator=torch.Generator().manual_seed(0))).numpy()
    return evaluator.evaluate(to_uint8(images), seed=0), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=150.0, help="seconds of training on --cores cores")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores the budget is counted on: each "
                        "recipe gets budget x cores CPU seconds")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads per training process")
    parser.add_argument("--parallel", type=int, default=1, help="training processes at once (threads x parallel "
                        "should not exceed the cores)")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of: {', '.join(RECIPES)}")
    parser.add_argument("--recipe", action="append", default=[], metavar="NAME=OPTIONS",
                        help="one more recipe, e.g. 'ttur=--d-lr 1e-3' (gan-train options; repeatable)")
    parser.add_argument("--ckpt-every", type=int, default=1000, help="steps between the checkpoints scored "
                                                                     "for the time to 2x the floor")
    parser.add_argument("--keep", default=None, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the gan.py-style baseline")
    args = parser.parse_args()
    for extra in args.recipe:
        name, _, options = extra.partition("=")
        RECIPES[name] = shlex.split(options)
    names = [name for name in args.recipes.split(",") if name] + [e.partition("=")[0] for e in args.recipe]
    evaluator = Evaluator.for_mnist()
    cpu_budget = args.budget * args.cores
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        runs = train_all(names, cpu_budget, args.threads, args.parallel, folder, args.ckpt_every)
        for name, (run, state) in runs.items():
            result = score_checkpoint(run / "checkpoints" / "last.pt", evaluator, args.samples)
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            training = [row for row in metrics if "cpu_time" in row]
            steps, trained = training[-1]["step"], training[-1]["cpu_time"] / args.cores
            rows.append((name, steps, trained, result, time_to_target(run, evaluator, args.samples, args.cores), state))
            print(f"{name}: {steps} steps, FID {result['fid']:.2f}, {state}", flush=True)
        if not args.no_baseline:
            torch.set_num_threads(args.threads)
            result, steps = baseline_for(args.budget, args.cores, evaluator, args.samples)
            rows.append(("gan.py baseline", steps, args.budget, result, None, "-"))
    floor = rows[0][3]["fid_floor"]
    print(f"\n{machine()}; each recipe {cpu_budget:.0f} CPU s (= {args.budget:.0f} s on {args.cores} cores), "
          f"{args.threads} thread(s) per run, {args.parallel} run(s) at once; {args.samples} samples scored; "
          f"real-vs-real FID floor {floor:.2f} (classifier features, not Inception FID)")
    print(f"{'recipe':16}{'steps':>8}{'trained':>9}{'FID':>8}{'xfloor':>8}{'KID':>9}{'prec':>7}{'recall':>8}"
          f"{'rarest':>8}{'cond acc':>10}{'to 2x floor':>13}{'run':>8}")
    for name, steps, trained, r, to_target, state in rows:
        accuracy = f"{r['conditional_accuracy']:.1%}" if "conditional_accuracy" in r else "-"
        reached = f"{to_target:.0f} s" if to_target is not None else "-"
        print(f"{name:16}{steps:8d}{trained:8.0f}s{r['fid']:8.2f}{r['fid'] / floor:8.2f}{r['kid']:9.4f}"
              f"{r['precision']:7.2f}{r['recall']:8.2f}{r['rarest_class_share']:8.1%}{accuracy:>10}{reached:>13}"
              f"{state:>8}")
    print("trained: seconds on the budget's cores (CPU seconds / cores) until the run's own length or the budget; "
          "run: FAILED when gan-train exited 4 (a failed state held at the end: D winning outright, G constant or "
          "saturated), warned when such a state began at some point")


if __name__ == "__main__":
    main()
