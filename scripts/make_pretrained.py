"""A gan-train run (or one checkpoint) -> the shipped pretrained model: runtime/pretrained/<name>.onnx.

    python scripts/make_pretrained.py runs/mlp-bn-20261130-180000 -o runtime/pretrained/mnist.onnx

Exports the generator as ``gan-export --fp16`` does (EMA weights when the checkpoint has them, checked
against PyTorch), scores 5000 samples with the quality metric (onnxgan.quality: FID against the
real-vs-real floor, as ``gan-eval -n 5000 --seed 0`` would), and adds what it measured to the file's
optional ``training`` metadata key (docs/onnx-contract.md): preset, steps, FID, floor. Needs the
training install (torch, onnx, onnxruntime).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import onnx
from onnx import helper

from onnxgan.errors import UserError
from onnxgan.export.onnx_export import export_checkpoint
from onnxgan.files import atomic_write, refuse_overwriting_inputs
from onnxgan.quality import Evaluator
from onnxgan.runtime import Sampler
from onnxgan.runtime.contract import TRAINING_KEY
from onnxgan.runtime.eval_cli import requested_labels
from onnxgan.train.checkpoint import load_checkpoint, resolve_checkpoint

EVAL_SAMPLES, EVAL_SEED = 5000, 0


def training_record(checkpoint: Path, data: bytes) -> dict:
    """The ``training`` metadata for a model exported from ``checkpoint`` (its bytes ``data``)."""
    state = load_checkpoint(checkpoint)
    sampler = Sampler(data, device="cpu")
    labels, label_note = requested_labels(sampler, EVAL_SAMPLES)  # balanced classes, as gan-eval asks
    images = sampler.sample(EVAL_SAMPLES, seed=EVAL_SEED, labels=labels)
    result = Evaluator.for_mnist().evaluate(images, labels if label_note is None else None, seed=EVAL_SEED)
    return {
        "preset": state["train_config"]["preset"] or None,  # None: no preset (the run's own options)
        "steps": int(state["step"]),
        "fid": round(result["fid"], 3),
        "fid_floor": round(result["fid_floor"], 3),  # real-vs-real at the same sample count
        "eval_samples": EVAL_SAMPLES,
        "eval_seed": EVAL_SEED,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.onnx")
    args = parser.parse_args()
    try:
        checkpoint = resolve_checkpoint(args.source)
        refuse_overwriting_inputs(args.output, checkpoint)
        exported = export_checkpoint(checkpoint, fp16=True)
        record = training_record(checkpoint, exported.data)
    except UserError as e:
        sys.exit(f"error: {e}")
    model = onnx.load_from_string(exported.data)
    helper.set_model_props(model, {**exported.info.to_metadata(), TRAINING_KEY: json.dumps(record)})
    data = model.SerializeToString()
    Sampler(data, device="cpu")  # the file still passes the contract's checks
    with atomic_write(args.output) as f:
        f.write(data)
    print(f"{checkpoint} -> {args.output}: {len(data) / 1e6:.2f} MB, {TRAINING_KEY} {json.dumps(record)}")


if __name__ == "__main__":
    main()
