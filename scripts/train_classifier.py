"""Train the MNIST classifier behind onnxgan.quality and write the package's two quality files.

    /work/venv/bin/python scripts/train_classifier.py              # train, export, reference (minutes)
    /work/venv/bin/python scripts/train_classifier.py --reference-only   # recompute the .npz only

Writes quality/mnist_classifier.onnx (a small CNN, opset 17, IR 8, outputs ``features``
and ``logits``) and mnist_reference.npz (MNIST test-set statistics in its features plus the
real-vs-real floors; see onnxgan.quality.evaluator). Same seed and thread count, same bytes: the data
order and dropout come from the seed, torch runs with deterministic algorithms and a fixed number of
threads (a CPU convolution's sums depend on how the work is split). The reference is measured through
onnxruntime on the exported file, exactly as onnxgan.quality will run it.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from onnxgan.files import atomic_write
from onnxgan.quality.classifier import (CLASSIFIER_PATH, FEATURE_DIM, FEATURES, INPUT, LOGITS, NUM_CLASSES,
                                        Classifier, to_pixels)
from onnxgan.quality.evaluator import REFERENCE_PATH, build_reference, save_reference
from onnxgan.train.data import load_mnist

OPSET, IR_VERSION = 17, 8  # the same as model.onnx (docs/onnx-contract.md)
MIN_TEST_ACCURACY = 0.99


class MnistClassifier(nn.Module):
    """conv3x3(32) - pool - conv3x3(64) - pool - fc(FEATURE_DIM) - ReLU = features; dropout - fc(10) = logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, FEATURE_DIM), nn.ReLU(),  # (N, FEATURE_DIM)
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pixels (N, 1, 28, 28) in [0, 1] -> (features (N, FEATURE_DIM), logits (N, 10))."""
        features = self.body(pixels)
        return features, self.head(self.dropout(features))


def train(epochs: int, batch_size: int, lr: float, seed: int) -> MnistClassifier:
    """Adam with a cosine-decayed learning rate; each batch shifted by up to 2 pixels (one shift per batch)."""
    data = load_mnist("train")
    images = torch.from_numpy(to_pixels(data.images[:, 0]))  # (60000, 1, 28, 28)
    labels = torch.from_numpy(data.labels)  # (60000,)
    torch.manual_seed(seed)
    model = MnistClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = len(images) // batch_size
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        start, order = time.perf_counter(), torch.randperm(len(images), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            total += shifted_step(model, optimizer, images[batch], labels[batch], generator).item()
            schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f} ({time.perf_counter() - start:.0f} s)",
              file=sys.stderr)
    return model.eval()


def shifted_step(model: MnistClassifier, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                 labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One optimiser step on images (B, 1, 28, 28) all shifted by one draw of up to 2 pixels; the loss."""
    dy, dx = torch.randint(-2, 3, (2,), generator=generator).tolist()
    _, logits = model(torch.roll(images, shifts=(dy, dx), dims=(2, 3)))
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def export(model: MnistClassifier) -> bytes:
    """The legacy TorchScript exporter (IR 8, plain Conv/Gemm nodes), batch dimension symbolic."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter says it is deprecated
        torch.onnx.export(model, (torch.zeros(2, 1, 28, 28),), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[FEATURES, LOGITS],
                          dynamic_axes={name: {0: "N"} for name in (INPUT, FEATURES, LOGITS)})
    onnx_model = onnx.load_from_string(buffer.getvalue())
    onnx_model.ir_version = IR_VERSION
    onnx_model.producer_name = "onnxgan scripts/train_classifier.py"
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model.SerializeToString()


def check_against_torch(model: MnistClassifier, classifier: Classifier, images: np.ndarray) -> float:
    """Max abs difference of onnxruntime's and PyTorch's logits on uint8 images (N, 28, 28)."""
    with torch.no_grad():
        theirs = model(torch.from_numpy(to_pixels(images)))[1].numpy()
    return float(np.max(np.abs(classifier.features(images)[1] - theirs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads; part of what makes a run repeatable")
    parser.add_argument("--reference-only", action="store_true",
                        help="keep the existing classifier; recompute mnist_reference.npz")
    args = parser.parse_args()

    if not args.reference_only:
        torch.set_num_threads(args.threads)
        torch.use_deterministic_algorithms(True)
        model = train(args.epochs, args.batch_size, args.lr, args.seed)
        with atomic_write(CLASSIFIER_PATH) as f:
            f.write(export(model))
        error = check_against_torch(model, Classifier(), load_mnist("t10k").images[:256, 0])
        print(f"wrote {CLASSIFIER_PATH} ({CLASSIFIER_PATH.stat().st_size} bytes); onnxruntime vs PyTorch "
              f"logits: max abs error {error:.2g}", file=sys.stderr)
        if not error < 1e-3:
            sys.exit(f"the exported classifier disagrees with PyTorch (max abs error {error:.3g})")

    test = load_mnist("t10k")
    start = time.perf_counter()
    reference = build_reference(Classifier(), test.images[:, 0], test.labels, load_mnist("train").images[:, 0],
                                seed=args.seed)
    save_reference(reference, REFERENCE_PATH)
    print(f"wrote {REFERENCE_PATH} ({REFERENCE_PATH.stat().st_size} bytes, {time.perf_counter() - start:.0f} s): "
          f"test accuracy {reference.test_accuracy:.4f}; real-vs-real floors by n: "
          + "; ".join(f"n={n} FID {fid:.3f} KID {kid:.5f} P {p:.3f} R {r:.3f}" for n, fid, kid, p, r in
                      zip(reference.floor_n, reference.floor_fid, reference.floor_kid, reference.floor_precision,
                          reference.floor_recall)), file=sys.stderr)
    if reference.test_accuracy < MIN_TEST_ACCURACY:
        sys.exit(f"test accuracy {reference.test_accuracy:.4f} < {MIN_TEST_ACCURACY}; train longer")


if __name__ == "__main__":
    main()
