"""A gan-train run (or one checkpoint) -> the shipped pretrained model: runtime/pretrained/<name>.onnx.

    python scripts/make_pretrained.py runs/mlp-bn-20261130-180000 -o runtime/pretrained/mnist.onnx

Exports the generator as gan-export does (EMA weights when the checkpoint has them, checked against
PyTorch to gan-export's float32 tolerance), stores its weights as float16 (gan-export --fp16's
store_weights_as_fp16: half the file, the same graph in float32) and checks that this moves no pixel
by more than one grey level on EVAL_SAMPLES images, scores the float16 file with the quality metric
(onnxgan.quality: FID against the real-vs-real floor, as ``gan-eval -n 5000 --seed 0`` would), and
adds what it measured to the file's optional ``training`` metadata key (docs/onnx-contract.md):
preset, steps, FID, floor. Needs the training install (torch, onnx, onnxruntime).

Why not gan-export --fp16 itself: its check holds float16 files to 2e-3 (max abs, images in [-1, 1])
against PyTorch, which the default recipe's trained G misses by a little (2.7e-3, a third of a grey
level); what matters for a shipped model is its pixels, checked here against its own float32 export.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from onnxgan.errors import CheckFailed, UserError
from onnxgan.export.onnx_export import export_checkpoint, store_weights_as_fp16
from onnxgan.files import atomic_write, refuse_overwriting_inputs
from onnxgan.quality import Evaluator
from onnxgan.runtime import Sampler
from onnxgan.runtime.contract import TRAINING_KEY
from onnxgan.runtime.eval_cli import requested_labels
from onnxgan.train.checkpoint import load_checkpoint, resolve_checkpoint

EVAL_SAMPLES, EVAL_SEED = 5000, 0


def fp16_model(checkpoint: Path) -> tuple[onnx.ModelProto, int]:
    """``checkpoint``'s G as a checked model.onnx with float16 weights, and the most grey levels any
    pixel of EVAL_SAMPLES images moved from the float32 export (at most 1, else ``CheckFailed``)."""
    exported = export_checkpoint(checkpoint)  # float32, checked against PyTorch
    model = onnx.load_from_string(exported.data)
    store_weights_as_fp16(model)
    info = dataclasses.replace(exported.info, weights_dtype="float16")
    helper.set_model_props(model, info.to_metadata())
    full, half = (Sampler(data, backend="onnxruntime", device="cpu")
                  for data in (exported.data, model.SerializeToString()))
    z, labels = full.latent(EVAL_SAMPLES, EVAL_SEED), full.labels(EVAL_SAMPLES, None)  # (N, latent_dim), (N,)
    moved = int(np.abs(full.pixels(z, labels).astype(np.int16) - half.pixels(z, labels)).max())
    if moved > 1:
        raise CheckFailed(f"{checkpoint}: float16 weights move a pixel by {moved} grey levels (at most 1 allowed)")
    return model, moved


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
    args = parser.parse_args()
    try:
        checkpoint = resolve_checkpoint(args.source)
        refuse_overwriting_inputs(args.output, checkpoint)
        model, moved = fp16_model(checkpoint)
        record = training_record(checkpoint, model.SerializeToString())
    except (UserError, CheckFailed) as e:
        sys.exit(f"error: {e}")
    props = {prop.key: prop.value for prop in model.metadata_props}
    helper.set_model_props(model, {**props, TRAINING_KEY: json.dumps(record)})
    data = model.SerializeToString()
    Sampler(data, device="cpu")  # the file still passes the contract's checks
    with atomic_write(args.output) as f:
        f.write(data)
    print(f"{checkpoint} -> {args.output}: {len(data) / 1e6:.2f} MB float16 (pixels within {moved} grey level of "
          f"float32), {TRAINING_KEY} {json.dumps(record)}")


if __name__ == "__main__":
    main()
