"""The augmentation use case, scored: do a GAN's images help a classifier trained on k images per class?

For each k and seed: draw k labelled MNIST train images per class; train a conditional G on those alone
(the default recipe with DiffAugment, `--augment translation,cutout`, for --g-steps); export it and
sample --generated images per class; then train the same small CNN (the shipped metric's architecture,
scripts/train_classifier.py, trained here from scratch) from the same seed on (a) the k real
images per class and (b) those plus the generated ones, for the same number of steps, and report MNIST
test accuracy for both with the CPU time each part took (CPU-seconds of every thread, so a busy machine
slows it without changing the result).

    python benchmarks/augment.py                          # k = 10 and 100, seeds 0-2 (about an hour on 2 cores)
    python benchmarks/augment.py --k 10 --seeds 0 --g-steps 1000   # a quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from onnxgan.runtime import Sampler
from onnxgan.train.data import load_mnist

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
from train_classifier import MnistClassifier, shifted_step  # noqa: E402  the shipped metric's CNN, as "the same small classifier"

BIN = Path(sys.executable).parent  # gan-train and gan-export beside the interpreter


def children_cpu() -> float:
    """CPU-seconds of every finished child process (gan-train, gan-export), all threads."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pick(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of k images of each class 0..9, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False) for c in range(10)])


def train_generator(images: np.ndarray, labels: np.ndarray, steps: int, seed: int, amp: str,
                    folder: Path) -> tuple[Path, bool]:
    """A conditional G trained on uint8 (N, 28, 28) images with labels (N,) -> (its model.onnx, whether
    gan-train judged the run failed: exit 4, every file kept, so it is exported and used all the same)."""
    data = folder / "real.npz"
    np.savez(data, images=images, labels=labels)
    batch = min(64, len(images) // 2)  # k = 10: 100 images, so a batch of 50 (an epoch needs one full batch)
    run = folder / "run"
    trained = subprocess.run([BIN / "gan-train", "--data", data, "--steps", str(steps), "--batch-size", str(batch),
                              "--augment", "translation,cutout", "--seed", str(seed), "--eval-every", "0", "--amp",
                              amp, "--ckpt-every", str(steps), "--out", run], capture_output=True, text=True)
    if trained.returncode not in (0, 4):
        raise SystemExit(f"gan-train exited {trained.returncode}: {trained.stderr.strip().splitlines()[-1:]}")
    model = folder / "g.onnx"
    subprocess.run([BIN / "gan-export", run, "-o", model], check=True, capture_output=True)
    return model, trained.returncode == 4


def train_classifier(images: np.ndarray, labels: np.ndarray, steps: int, seed: int) -> MnistClassifier:
    """Adam 1e-3, batch 64, each batch shifted by up to 2 pixels; images uint8 (N, 28, 28)."""
    pixels = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]  # (N, 1, 28, 28)
    targets = torch.from_numpy(labels.astype(np.int64))
    torch.manual_seed(seed)
    model = MnistClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(pixels), (64,), generator=generator)
        shifted_step(model, optimizer, pixels[batch], targets[batch], generator)
    return model.eval()


def accuracy(model: MnistClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        pixels = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        predicted = torch.cat([model(pixels[i : i + 1000])[1].argmax(dim=1) for i in range(0, len(pixels), 1000)])
    return float((predicted.numpy() == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[10, 100], help="real images per class")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--g-steps", type=int, default=3000, help="G training steps")
    parser.add_argument("--generated", type=int, default=200, help="generated images per class")
    parser.add_argument("--classifier-steps", type=int, default=800)
    parser.add_argument("--amp", default="auto", help="gan-train's --amp for G")
    args = parser.parse_args()
    train, test = load_mnist("train"), load_mnist("t10k")
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; G: the default recipe "
          f"+ --augment translation,cutout, {args.g_steps} steps, --amp {args.amp}; {args.generated} generated "
          f"per class; classifier {args.classifier_steps} steps of 64")
    print("| k | seed | real only | real + generated | gain (points) | G CPU-s | classifiers CPU-s |")
    print("|---|---|---|---|---|---|---|")
    gains: dict[int, list[float]] = {}
    for k in args.k:
        for seed in args.seeds:
            index = pick(train.labels, k, seed)
            real, real_labels = train.images[index, 0], train.labels[index]  # (10k, 28, 28), (10k,)
            with tempfile.TemporaryDirectory() as folder:
                cpu = children_cpu()
                model, failed = train_generator(real, real_labels, args.g_steps, seed, args.amp, Path(folder))
                g_cpu = children_cpu() - cpu
                wanted = np.repeat(np.arange(10), args.generated)  # (10 * generated,)
                fake = Sampler(model).sample(len(wanted), seed=seed, labels=wanted)  # uint8 (M, 28, 28)
            start = time.process_time()
            plain = accuracy(train_classifier(real, real_labels, args.classifier_steps, seed), test.images[:, 0],
                             test.labels)
            mixed = accuracy(train_classifier(np.concatenate([real, fake]), np.concatenate([real_labels, wanted]),
                                              args.classifier_steps, seed), test.images[:, 0], test.labels)
            gains.setdefault(k, []).append(100 * (mixed - plain))
            print(f"| {k} | {seed} | {plain:.2%} | {mixed:.2%}{' (G run judged failed)' if failed else ''} | "
                  f"{100 * (mixed - plain):+.1f} | {g_cpu:.0f} | {time.process_time() - start:.0f} |", flush=True)
    for k, values in gains.items():
        print(f"k = {k}: mean gain {np.mean(values):+.2f} points over {len(values)} seed(s)")


if __name__ == "__main__":
    main()
