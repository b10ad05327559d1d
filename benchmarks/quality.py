"""Sample quality at equal CPU time: each onnxgan model and the gan.py-style baseline, side by side.

Each onnxgan model trains as a real ``gan-train`` process that gets SIGINT when its time budget is
spent (it saves a checkpoint and exits 130, as a user's Ctrl-C would); the checkpoint is exported with
``gan-export`` and scored with the shipped MNIST classifier metric (``onnxgan.quality``). The baseline
(benchmarks/train_speed.py's gan.py-style loop) trains in this process for the same wall time and its
G is scored on the same number of samples.

    python benchmarks/quality.py [--budget 600] [--samples 5000] [--models mlp,mlp-bn,dcgan,mlp-cond]

Goals (issue 6): mlp beats the baseline's FID at equal time; the best FID is within 3x the real-vs-real
floor; every class holds >= 7% of samples; conditional accuracy >= 95%.
"""
from __future__ import annotations

import argparse
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

from onnxgan.images import to_uint8
from onnxgan.quality import Evaluator
from onnxgan.runtime import Sampler
from onnxgan.train.data import load_mnist

MODELS = {
    "mlp": ["--model", "mlp"],
    "mlp-bn": ["--model", "mlp-bn"],
    "dcgan": ["--model", "dcgan"],
    "mlp-cond": ["--model", "mlp", "--cond"],
}
BIN = Path(sys.executable).parent


def train_for(name: str, args: list[str], budget: float, folder: Path) -> tuple[Path, int]:
    """Run gan-train for ``budget`` seconds of wall time, then Ctrl-C it; returns (run dir, steps)."""
    run = folder / name
    command = [str(BIN / "gan-train"), *args, "--steps", "10000000", "--eval-every", "0", "--ckpt-every", "10000000",
               "--sample-every", "2000", "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = process.stderr.readline()  # "training ... -> run": data loaded, the clock starts
    if not started.startswith("training "):
        raise SystemExit(f"{name}: gan-train did not start: {started}{process.stderr.read()[-500:]}")
    time.sleep(budget)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    if process.returncode != 130:
        raise SystemExit(f"{name}: gan-train ended with {process.returncode}: {stderr[-500:]}")
    step = int(stderr.split("interrupted at step ")[1].split(";")[0])
    return run, step


def score_run(run: Path, evaluator: Evaluator, samples: int) -> dict:
    model = run / "model.onnx"
    subprocess.run([str(BIN / "gan-export"), str(run), "-o", str(model)], check=True, capture_output=True)
    sampler = Sampler(model)
    labels = sampler.labels(samples, None)  # balanced 0, 1, 2, ... for conditional models, else None
    return evaluator.evaluate(sampler.sample(samples, seed=0, labels=labels), requested_labels=labels, seed=0)


def baseline_for(budget: float, evaluator: Evaluator, samples: int) -> tuple[dict, int]:
    data = load_mnist("train")
    dataset = TensorDataset(torch.from_numpy(data.images).float().div(127.5).sub(1.0))
    torch.manual_seed(0)
    generator, discriminator = BaselineGenerator(), BaselineDiscriminator()
    steps = baseline_train(generator, discriminator, dataset, torch.device("cpu"), seconds=budget)
    generator.eval()
    with torch.no_grad():
        images = generator(torch.randn(samples, LATENT, generator=torch.Generator().manual_seed(0))).numpy()
    return evaluator.evaluate(to_uint8(images), seed=0), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training per model")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-baseline", action="store_true", help="skip the gan.py-style baseline")
    args = parser.parse_args()
    evaluator = Evaluator.for_mnist()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            run, steps = train_for(name, MODELS[name], args.budget, Path(tmp))
            rows.append((name, steps, score_run(run, evaluator, args.samples)))
            print(f"{name}: {steps} steps, FID {rows[-1][2]['fid']:.2f}", flush=True)
        if not args.no_baseline:
            result, steps = baseline_for(args.budget, evaluator, args.samples)
            rows.append(("gan.py baseline", steps, result))
    floor = rows[0][2]["fid_floor"]
    print(f"\n{args.budget:.0f} s of training each on {torch.get_num_threads()} CPU threads, "
          f"{args.samples} samples scored; real-vs-real FID floor {floor:.2f} (classifier features, "
          "not Inception FID)")
    print(f"{'model':18}{'steps':>8}{'FID':>8}{'xfloor':>8}{'KID':>9}{'prec':>7}{'recall':>8}{'rarest':>8}{'cond acc':>10}")
    for name, steps, r in rows:
        accuracy = f"{r['conditional_accuracy']:.1%}" if "conditional_accuracy" in r else "-"
        print(f"{name:18}{steps:8d}{r['fid']:8.2f}{r['fid'] / floor:8.1f}{r['kid']:9.4f}{r['precision']:7.2f}"
              f"{r['recall']:8.2f}{r['rarest_class_share']:8.1%}{accuracy:>10}")


if __name__ == "__main__":
    main()
