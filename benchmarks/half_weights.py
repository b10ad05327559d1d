"""Half-size weights on the shipped MNIST generator: the pixel criterion over many samples.

The shipped model (runtime/pretrained/mnist.onnx) stores its weights as float16, so the float32 model it
was rounded from comes from its training run: pass that run (or its checkpoint), which
scripts/make_pretrained.py exported. The script exports it as gan-export does with float32 weights and
with float16 ones, checks that the float16 file's weights are the shipped file's (the same generator),
and measures on --samples images (z of --seed, classes cycling 0-9) how the uint8 images agree, beside
the criterion's anchors (runtime/pixels.py: >= 99.9% of pixels equal, none more than 1 grey level apart):

  onnxruntime    float16 file vs float32 file, both on onnxruntime (what gan-export's choice measures)
  native         the same two files on the native kernel at its default precision (fp16 in memory for the
                 float16 file on AVX2/AVX-512, fp32 for the float32 one)
  backends       the float16 file: native (default precision) vs onnxruntime, the same weights

    python benchmarks/half_weights.py /tmp/exp/b600/default [--samples 100000] [--seed 0]

Needs the training install (torch, onnx, onnxruntime). No timing: the figures are counts.
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import numpy_helper

from onnxgan.export.onnx_export import export_checkpoint
from onnxgan.runtime import Sampler, pretrained
from onnxgan.runtime.pixels import measure_agreement
from onnxgan.train.checkpoint import resolve_checkpoint


def weights(data: bytes) -> dict[str, np.ndarray]:
    """Every initializer of a model.onnx by name."""
    return {tensor.name: numpy_helper.to_array(tensor) for tensor in onnx.load_from_string(data).graph.initializer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help="the run the shipped model was made from")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checkpoint = resolve_checkpoint(args.source)
    full, half = (export_checkpoint(checkpoint, dtype).data for dtype in ("float32", "float16"))
    shipped = weights(pretrained.path("mnist").read_bytes())
    ours = weights(half)
    same = shipped.keys() == ours.keys() and all(np.array_equal(shipped[k], ours[k]) for k in ours)
    print(f"{checkpoint}: float16 weights {'equal' if same else 'DIFFER FROM'} the shipped mnist.onnx's; "
          f"{args.samples:,} samples, seed {args.seed}")
    native = {dtype: Sampler(data, backend="native") for dtype, data in (("float32", full), ("float16", half))}
    print("native precision in memory: " + ", ".join(
        f"{dtype} file -> {sampler.info()['precision']}" for dtype, sampler in native.items()))
    ort = {dtype: Sampler(data, backend="onnxruntime", device="cpu") for dtype, data in (("float32", full), ("float16", half))}
    for name, reference, candidate in (("onnxruntime", ort["float32"], ort["float16"]),
                                       ("native", native["float32"], native["float16"]),
                                       ("backends", ort["float16"], native["float16"])):
        agreement = measure_agreement(reference, candidate, args.samples, args.seed)
        print(f"{name:<12} {agreement.equal_fraction:9.4%} equal (anchor >= 99.9%), "
              f"{agreement.differing:,} of {agreement.pixels:,} pixels differ, max {agreement.max_levels} grey "
              f"level (anchor <= 1): {'meets' if agreement.passes else 'FAILS'} the criterion")


if __name__ == "__main__":
    main()
