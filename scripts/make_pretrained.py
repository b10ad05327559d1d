"""A gan-train run (or one checkpoint) -> the shipped pretrained model: runtime/pretrained/<name>.onnx.

    python scripts/make_pretrained.py runs/mlp-bn-20261130-180000 -o runtime/pretrained/mnist.onnx [--weights float16]

Exports the generator as gan-export does (EMA weights when the checkpoint has them, checked against
PyTorch; --weights as gan-export's: float16 when its images meet the pixel criterion against float32's,
runtime/pixels.py, unless a dtype is given), scores the file with the quality metric (onnxgan.quality:
FID against the real-vs-real floor, as ``gan-eval -n 5000 --seed 0`` would), and adds what it measured
to the file's optional ``training`` metadata key (docs/onnx-contract.md): preset, steps, FID, floor.
Needs the training install (torch, onnx, onnxruntime).

The shipped mnist.onnx was made with ``--weights float16`` before the criterion existed: its float16
images equal its float32 ones on 99.32% of pixels (100,000 samples, benchmarks/half_weights.py), every
other pixel within one grey level, so ``auto`` would now ship float32 weights (twice the file).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import onnx
from onnx import helper

from onnxgan.errors import CheckFailed, UserError
from onnxgan.export.onnx_export import WEIGHTS_DTYPES, export_checkpoint
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
    if "fid" not in result:
        raise UserError(f"{checkpoint}: {result['not_computed']}; the shipped models are MNIST generators")
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
    parser.add_argument("--weights", choices=WEIGHTS_DTYPES, default="auto", help="as gan-export's --weights")
    args = parser.parse_args()
    try:
        checkpoint = resolve_checkpoint(args.source)
        refuse_overwriting_inputs(args.output, checkpoint)
        exported = export_checkpoint(checkpoint, args.weights)
        record = training_record(checkpoint, exported.data)
    except (UserError, CheckFailed) as e:
        sys.exit(f"error: {e}")
    model = onnx.load_from_string(exported.data)
    props = {prop.key: prop.value for prop in model.metadata_props}
    helper.set_model_props(model, {**props, TRAINING_KEY: json.dumps(record)})
    data = model.SerializeToString()
    Sampler(data, device="cpu")  # the file still passes the contract's checks
    with atomic_write(args.output) as f:
        f.write(data)
    agreement = "" if exported.agreement is None else f"; float16 vs float32: {exported.agreement}"
    print(f"{checkpoint} -> {args.output}: {len(data) / 1e6:.2f} MB {exported.info.weights_dtype}{agreement}, "
          f"{TRAINING_KEY} {json.dumps(record)}")


if __name__ == "__main__":
    main()
