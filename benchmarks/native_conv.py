"""The native sampler against onnxruntime on the `dcgan` generator (z 100 -> Linear 6272 -> 128x7x7 ->
ConvTranspose 4x4/2 -> 64x14x14 -> ConvTranspose 4x4/2 -> 1x28x28, BatchNorm folded), one process.

For batch 1, 16, 64, 256 and threads 1 and 2, three runners compute the same images from the same z:

  native          onnxgan.runtime._native.Model, fp32 weights, its best kernel (or --kernel)
  ort-spin        onnxruntime CPU, intra_op_num_threads=threads, spinning on (its default)
  ort-nospin      the same with spinning off

Rounds, cells, "spread", "p90 call", "idle call" and "x ort" are those of benchmarks/native_sampler.py
(whose measuring code this script imports). GFLOP/s counts the model's useful multiply-adds x 2 per
sample (a Gemm's in x out, a Conv's output pixels x C_in x kh x kw x C_out, a ConvTranspose's input
pixels x C_in x kh x kw x C_out), read from the graph with onnx's shape inference. "% peak" is of the FMA
peak of cpp/tests/fma_peak.cpp on one core for the kernel's instruction set, times the threads. The
goals of issue 21 (two threads, medians: batch 16 to 256 at >= 1.0x onnxruntime's throughput, batch 1
at <= 1.0x its latency, >= 60% of the FMA peak from batch 64) are checked at the end. Print the load
average beside it: a run on a shared machine says little (docs/native.md).

    python benchmarks/native_conv.py [--rounds 15] [--model other_conv.onnx] [--kernel avx2]
"""
from __future__ import annotations

import os
import statistics

import numpy as np
import onnx
import onnxruntime as ort
from native_sampler import fma_peak, measure, ort_runner, parse_arguments

from onnxgan.runtime import _native, latent


def default_model() -> bytes:
    """The dcgan G (28x28 grey, unconditional) with fresh random weights, through gan-export's code path."""
    import torch

    from onnxgan.export.onnx_export import export_generator
    from onnxgan.train.config import ModelConfig
    from onnxgan.train.models import build_models

    torch.manual_seed(0)
    config = ModelConfig(name="dcgan").resolved()
    return export_generator(build_models(config)[0], config, step=0, weights_dtype="float32").data


def flops_per_sample(data: bytes) -> int:
    """2 x the useful multiply-adds of one sample: Gemm/MatMul, Conv and ConvTranspose nodes."""
    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(data), strict_mode=True)
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    weights.update({t.name.removesuffix(".fp16"): list(t.dims) for t in model.graph.initializer})
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Gemm", "MatMul"):
            total += int(np.prod(weights[node.input[1]]))
        elif node.op_type == "Conv":
            total += int(np.prod(weights[node.input[1]])) * int(np.prod(dims[node.output[0]][2:]))
        elif node.op_type == "ConvTranspose":
            total += int(np.prod(weights[node.input[1]])) * int(np.prod(dims[node.input[0]][2:]))
    return 2 * total


def main() -> None:
    args = parse_arguments(__doc__.splitlines()[0], "1,16,64,256", "a conv generator model.onnx (default: dcgan, random weights)")
    data = args.model.read_bytes() if args.model else default_model()
    flops = flops_per_sample(data)
    peak = fma_peak(args.probe)
    probe = _native.Model.from_bytes(data, threads=1, kernel=args.kernel)
    kernel, latent_dim, classes = probe.kernel, probe.latent_dim, probe.num_classes
    print(f"native kernel (instruction set): {kernel}; FMA peak GFLOP/s of one core: {peak or 'not measured (no --probe)'}; "
          f"onnxruntime {ort.__version__}; {flops / 1e6:.2f} MFLOP per sample; {args.rounds} rounds; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'batch':>5} {'thr':>3} {'runner':<11} {'best us':>10} {'median us':>10} {'spread':>7} {'p90 call':>9} "
          f"{'idle call':>9} {'samples/s':>10} {'GFLOP/s':>8} {'% peak':>7} {'x ort':>6}")
    goals = []
    for threads in [int(t) for t in args.threads.split(",")]:
        model = _native.Model.from_bytes(data, threads=threads, kernel=kernel)
        sessions = {"ort-spin": ort_runner(data, threads, True), "ort-nospin": ort_runner(data, threads, False)}
        for batch in [int(b) for b in args.batches.split(",")]:
            z = latent(batch, latent_dim, seed=batch)
            labels = np.arange(batch, dtype=np.int64) % classes if classes else None
            runners = {"native": lambda z: model.generate(z, labels)}
            runners.update({name: (lambda z, run=run: run(z, labels)) for name, run in sessions.items()})
            reference = runners["ort-spin"](z)
            error = float(np.abs(runners["native"](z) - reference).max())
            assert error <= 1e-4, f"native batch {batch}: max error {error:.2g} against onnxruntime"
            times, _, single = measure(runners, z, args.rounds)
            round_starts = {name: range(0, len(single[name]), len(single[name]) // args.rounds) for name in single}
            medians = {name: statistics.median(t) for name, t in times.items()}
            ort_best = min(medians["ort-spin"], medians["ort-nospin"])
            isa_peak = threads * peak[kernel] if kernel in peak else None
            for name, t in times.items():
                gflops = flops * batch / min(t) / 1e9
                peak_text = f"{100 * gflops / isa_peak:6.0f}%" if isa_peak and name == "native" else ""
                print(f"{batch:5d} {threads:3d} {name:<11} {min(t) * 1e6:10.1f} {medians[name] * 1e6:10.1f} "
                      f"{100 * (medians[name] / min(t) - 1):6.0f}% {np.percentile(single[name], 90) * 1e6:9.1f} "
                      f"{statistics.median(single[name][start] for start in round_starts[name]) * 1e6:9.1f} "
                      f"{batch / min(t):10.0f} {gflops:8.1f} {peak_text:>7} {medians[name] / ort_best:6.2f}")
            if threads == 2:
                median_peak = 100 * flops * batch / medians["native"] / 1e9 / isa_peak if isa_peak else None
                goals.append((batch, ort_best / medians["native"], median_peak))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for batch, speedup, percent in goals:  # issue 21, on medians
        if batch == 1:
            print(f"goal batch 1, 2 threads: native latency {1 / speedup:.2f}x onnxruntime's (goal <= 1.0x)")
        else:
            share = (f"{percent:.0f}% of the {kernel} FMA peak" if percent is not None
                     else "an unmeasured share of the FMA peak (build the probe: cmake -S cpp -B build/native)")
            print(f"goal batch {batch}, 2 threads: native throughput {speedup:.2f}x onnxruntime's (goal >= 1.0x) at "
                  f"{share} on its median (goal >= 60% from batch 64)")


if __name__ == "__main__":
    main()
