"""Stacked MNIST (Metz et al. 2017; PacGAN; R3GAN): mode coverage out of 1000.

Each image stacks three MNIST digits as the three channels of one 28x28x3 picture, so the data set
has 10^3 = 1000 modes. ``build`` writes it as an npz that gan-train reads as unlabelled data (images
(N, 28, 28, 3) uint8, and the mode of each, 100 d0 + 10 d1 + d2, under ``modes``); ``score`` samples
a model.onnx, classifies each channel with the shipped MNIST classifier and reports the modes covered (at least one sample) and the reverse KL
KL(generated || uniform) of the mode histogram (0 for perfectly uniform coverage, log 1000 = 6.91 for
a single mode). Beside it, its anchor: the same count of real stacked digits through the same classifier
(about 0.024, not 0: MNIST's classes are not equally common, and the classifier errs on a few digits), the
least a perfect G could score here.

    python benchmarks/stacked_mnist.py build stacked.npz [--count 60000] [--seed 0]
    gan-train --data stacked.npz --steps 20000 --out runs/stacked ...
    gan-export runs/stacked -o stacked.onnx
    python benchmarks/stacked_mnist.py score stacked.onnx [--samples 26000]

26,000 samples is the count used by PacGAN and the papers after it.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

MODES = 1000
CHANNELS = 3
MAX_COUNT = 10**7  # images of either command: 23.5 GB of stacked images at most


def count_in(low: int, high: int):
    """An argparse type: an integer in low..high (a bad one is argparse's one-line error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value
    return parse


def build(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST uint8 (N, 28, 28) + labels (N,) -> stacked uint8 (count, 28, 28, 3) and mode labels (count,)."""
    picks = np.random.default_rng(seed).integers(0, len(images), size=(count, CHANNELS))  # (count, 3)
    stacked = np.stack([images[picks[:, c]] for c in range(CHANNELS)], axis=-1)  # (count, 28, 28, 3)
    modes = labels[picks[:, 0]] * 100 + labels[picks[:, 1]] * 10 + labels[picks[:, 2]]
    return stacked, modes.astype(np.int64)


def mode_coverage(digits: np.ndarray) -> dict[str, float]:
    """Predicted digits int (N, 3) per channel -> modes covered out of 1000 and KL(p || uniform)."""
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    histogram = np.bincount(modes, minlength=MODES) / max(len(modes), 1)  # (1000,)
    present = histogram > 0
    kl = float(np.sum(histogram[present] * np.log(histogram[present] * MODES)))
    return {"modes": int(present.sum()), "reverse_kl": kl, "samples": int(len(modes))}


def channel_digits(images: np.ndarray, classifier) -> np.ndarray:
    """uint8 (N, 28, 28, 3) -> the classifier's digit for each channel, int (N, 3)."""
    return np.stack([classifier.features(np.ascontiguousarray(images[..., c]))[1].argmax(axis=1)
                     for c in range(CHANNELS)], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="write the stacked data set as an npz")
    make.add_argument("out")
    make.add_argument("--count", type=count_in(1, MAX_COUNT), default=60000)
    make.add_argument("--seed", type=count_in(0, 2**63 - 1), default=0)
    rate = commands.add_parser("score", help="count the modes a model.onnx covers")
    rate.add_argument("model")
    # fewer samples than modes cannot cover them, and 0 samples would read as the perfect KL of 0
    rate.add_argument("--samples", type=count_in(MODES, MAX_COUNT), default=26000)
    rate.add_argument("--seed", type=count_in(0, 2**64 - 1), default=0)
    args = parser.parse_args()
    if args.command == "build" and not Path(args.out).resolve().parent.is_dir():
        parser.error(f"{args.out}: its folder does not exist")
    from onnxgan.errors import CommandError

    try:
        run(args)
    except CommandError as e:  # onnxgan's one-line errors: a missing or broken model, ...
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def run(args: argparse.Namespace) -> None:
    from onnxgan.errors import UserError
    from onnxgan.files import atomic_write
    from onnxgan.quality.classifier import Classifier

    if args.command == "build":
        from onnxgan.train.data import load_mnist

        mnist = load_mnist("train")
        stacked, modes = build(mnist.images[:, 0], mnist.labels, args.count, args.seed)
        # "modes", not "labels": gan-train reads the file as unlabelled data, so G must find the modes itself.
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=stacked, modes=modes)
        with atomic_write(args.out) as f:  # whole or not at all
            f.write(buffer.getbuffer())
        print(f"{args.out}: {len(stacked)} images (28, 28, 3), {len(np.unique(modes))} of {MODES} modes present")
        return
    from onnxgan.runtime import Sampler

    sampler = Sampler(args.model)
    if tuple(sampler.model_info.image_shape) != (CHANNELS, 28, 28):
        raise UserError(f"{args.model}: makes {tuple(sampler.model_info.image_shape)} (C, H, W) images; Stacked MNIST "
                        f"needs ({CHANNELS}, 28, 28)")
    from onnxgan.train.data import load_mnist

    classifier = Classifier()
    images = sampler.sample(args.samples, seed=args.seed)  # uint8 (N, 28, 28, 3)
    result = mode_coverage(channel_digits(images, classifier))
    mnist = load_mnist("train")
    real = mode_coverage(channel_digits(build(mnist.images[:, 0], mnist.labels, args.samples, args.seed)[0], classifier))
    print(f"{args.model}: {result['modes']} of {MODES} modes covered in {result['samples']} samples, "
          f"KL(generated || uniform) {result['reverse_kl']:.3f} (real stacked digits: {real['modes']} modes, "
          f"KL {real['reverse_kl']:.3f})")


if __name__ == "__main__":
    main()
