"""``gan-eval``: sample a model.onnx and score it: against MNIST test in the shipped classifier's
features, or with ``--real DATA`` against any data in pytorch-fid's Inception-v3 features.

Prints a table and, with -o, writes the figures as JSON (atomically). The classifier's FID/KID compare
onnxgan models with each other only; the Inception figures are the ones papers publish (the table says
which it printed).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from onnxgan.cli import CONTEXT_SETTINGS, Command
from onnxgan.datasets import load_path
from onnxgan.errors import UserError, printable
from onnxgan.files import atomic_write, refuse_overwriting_inputs
from onnxgan.quality import Evaluator, mode_collapse_warnings
from onnxgan.quality.classifier import NUM_CLASSES
from onnxgan.quality.evaluator import MIN_IMAGES
from onnxgan.quality.inception import InceptionFeatures
from onnxgan.quality.inception_scores import InceptionEvaluator
from onnxgan.quality.inception_weights import how_to_get_weights, resolve_weights

from . import pretrained
from .backends import BACKENDS, DEVICES
from .sampler import Sampler

NOTE = ("FID and KID here are measured in the penultimate features of onnxgan's small MNIST classifier against "
        "MNIST test; they are NOT comparable with Inception FID/KID from papers or other tools.")
INCEPTION_NOTE = ("measured in pytorch-fid's Inception-v3 pool3 features (2048-d; its resize and normalisation), "
                  "as published FID figures are; FID falls with N, so compare figures at equal N.")
DIGITS = [str(d) for d in range(NUM_CLASSES)]


@click.command("gan-eval", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.argument("model", metavar="MODEL.onnx", required=False)
@pretrained.option("Score")
@click.option("-n", "count", type=click.IntRange(min=MIN_IMAGES), default=5000, show_default=True,
              help="How many images to sample and score (the real-vs-real floors exist for 1000-10000).")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
              help="Seed of the latents and of the subsets KID and precision/recall draw.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--real", default=None, metavar="DATA",
              help="Score against this data instead of MNIST test, in Inception features: a folder of images, "
                   "an .npy/.npz array or IDX files (what gan-train --data reads); at most -n of its images, "
                   "drawn with --seed.")
@click.option("--inception", default=None, metavar="WEIGHTS.pth|download",
              help="pytorch-fid's Inception weights for --real: a file, or 'download' to fetch them once into "
                   "the user's cache (checked against the published checksum) [default: the cached file].")
@click.option("-o", "--output", default=None, metavar="METRICS.json", help="Also write the figures as JSON here.")
def main(model: str | None, pretrained_name: str | None, count: int, seed: int, backend: str, device: str,
         real: str | None, inception: str | None, output: str | None) -> None:
    """Score a generator exported by gan-export: FID, KID, precision/recall and class balance on MNIST,
    or FID, KID and precision/recall against your own data in Inception features (--real).

    \b
    Examples:
      gan-eval model.onnx
      gan-eval model.onnx -n 10000 --seed 1 -o metrics.json
      gan-eval --pretrained mnist
      gan-eval model.onnx --real photos/ --inception pt_inception-2015-12-05-6726825d.pth
    """
    model = pretrained.model_or_pretrained(model, pretrained_name)
    if output is not None:
        if Path(output).is_dir():
            raise UserError(f"-o {output}: is a folder; give a file name such as metrics.json")
        refuse_overwriting_inputs(output, model)
    if inception is not None and real is None:
        raise UserError("--inception is for scoring against --real DATA; pass the data too")
    start = time.perf_counter()
    # First: without onnxruntime (the base install), weights or readable data it refuses before any sampling.
    evaluator = Evaluator.for_mnist() if real is None else inception_evaluator(real, inception, count, seed)
    sampler = Sampler(model, backend=backend, device=device)
    info = sampler.info()
    labels, label_note = requested_labels(sampler, count)
    images = sampler.sample(count, seed=seed, labels=labels)
    result = evaluator.evaluate(images, labels if label_note is None else None, seed=seed)
    result.update({
        "model": str(model), "model_name": info["model"], "training_step": info["training_step"],
        "num_classes": info["num_classes"], "seed": seed, "backend": info["backend"],
        "warnings": mode_collapse_warnings(result), "note": NOTE if real is None else INCEPTION_NOTE,
        "seconds": round(time.perf_counter() - start, 3),
    })
    if label_note is not None and real is None:
        result["conditional_accuracy_not_computed"] = label_note
    if "not_computed" in result:
        result["not_computed"] += f"; for FID on any images pass --real DATA with {how_to_get_weights()}"
    click.echo(table(result))
    if output is not None:
        with atomic_write(output) as f:
            f.write((json.dumps(result, indent=2) + "\n").encode())
        click.echo(f"wrote {output}")


def inception_evaluator(real: str, inception: str | None, count: int, seed: int) -> InceptionEvaluator:
    """The Inception scores against at most ``count`` images of ``real`` (drawn with ``seed``)."""
    weights = resolve_weights(inception)
    if weights is None:
        raise UserError(f"--real needs Inception weights: pass {how_to_get_weights()}")
    network = InceptionFeatures(weights)
    data = load_path(real)
    pick = np.random.default_rng(seed).choice(len(data.images), min(count, len(data.images)), replace=False)
    return InceptionEvaluator(network, data.images[np.sort(pick)].transpose(0, 2, 3, 1), real)  # (M, H, W, C)


def requested_labels(sampler: Sampler, count: int) -> tuple[np.ndarray | None, str | None]:
    """Balanced labels (0, 1, 2, ... cycling) for a conditional model, and why they cannot be scored
    when its classes are not the digits 0..9 in order (None when they can, or the model is unconditional)."""
    info = sampler.info()
    classes = info["num_classes"]
    labels = sampler.labels(count, None)  # (count,) every class equally often; None when unconditional
    if labels is None:
        return None, None
    if classes != NUM_CLASSES or info["class_names"] not in ([], DIGITS):
        names = ", ".join(map(printable, info["class_names"]))
        return labels, (f"the model's {classes} classes ({names or 'unnamed'}) are not "
                        "the digits 0..9, which the classifier predicts")
    return labels, None


def table(result: dict[str, Any]) -> str:
    """The figures as aligned text: value beside the real-vs-real floor, then histogram, warnings, note."""
    head = (f"{result['model']} ({printable(result['model_name'])}, step {result['training_step']}): {result['n']} samples, "
            f"seed {result['seed']}, {result['backend']}, {result['seconds']:.1f} s")
    if "fid" not in result:
        return "\n".join([head, f"  pixel mean {result['pixel_mean']:.1f}, std {result['pixel_std']:.1f}, "
                                f"mean RMS distance between sample pairs {result['pair_rms_distance']:.1f} (0..255)",
                          f"  not computed: {result['not_computed']}"])
    if "real" in result:
        head += f"\n  against {printable(result['real'])} ({result['real_n']} images)"
    floor = f"real-vs-real (n={result['floor_n']})" if "floor_n" in result else "real-vs-real"
    rows = [("metric", "value", floor if "floor_n" in result else "")]
    for key, label, fmt in (("fid", "FID", ".3f"), ("kid", "KID", ".5f"), ("precision", "precision", ".3f"),
                            ("recall", "recall", ".3f"), ("class_kl", "class KL (nats)", ".4f")):
        if key in result:
            rows.append((label, format(result[key], fmt), format(result[f"{key}_floor"], fmt)
                         if f"{key}_floor" in result else "-" if "floor_n" in result else ""))
    if "rarest_class" in result:
        rows.append(("rarest class", f"{result['rarest_class']}: {result['rarest_class_share']:.1%}", ""))
    if "conditional_accuracy" in result:
        rows.append(("conditional accuracy", f"{result['conditional_accuracy']:.1%}", ""))
    lines = [head] + [f"  {a:<22}{b:>12}   {c}".rstrip() for a, b, c in rows]
    if "class_histogram" in result:
        lines.append("  class histogram       " + "  ".join(f"{d}: {s:.1%}"
                                                            for d, s in enumerate(result["class_histogram"])))
    if "conditional_accuracy_not_computed" in result:
        lines.append(f"  conditional accuracy not computed: {result['conditional_accuracy_not_computed']}")
    lines += [f"  warning: {line}" for line in result["warnings"]]
    lines.append(f"Note: {result['note']}")
    return "\n".join(lines)
