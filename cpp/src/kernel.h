// Packed weights and the GEMM kernels that run them: a portable reference (kernel_portable.cpp) and
// SIMD ones (kernel_simd.h, built for AVX2 and AVX-512 in their own files with their own -m flags),
// chosen at run time (cpu.cpp).
#ifndef ONNXGAN_KERNEL_H
#define ONNXGAN_KERNEL_H

#include <cstddef>
#include <cstdint>
#include <memory>

#include "onnxgan/sampler.h"
#include "plan.h"

namespace onnxgan {

constexpr int64_t kPanelWidth = 16;  // output columns per packed panel: two 8-float AVX registers

// One layer's weights in panels of 16 output columns, packed once at load time so that the kernels
// read them strictly in order. Panel p (columns 16p .. 16p+15, zero past `out`), 64-byte aligned:
//   float bias[16], then `in` rows of 16 weights, W[k][j] = weight[16p + j][k] as float or fp16 bits.
struct PackedLayer {
  int64_t in = 0, out = 0, panels = 0;
  Activation activation = Activation::kNone;
  float alpha = 0.0f;
  bool half = false;        // weights stored as IEEE fp16 (uint16 bits), else float
  size_t panel_bytes = 0;   // stride between panels
  std::shared_ptr<uint8_t> data;

  const float *bias(int64_t panel) const { return reinterpret_cast<const float *>(data.get() + size_t(panel) * panel_bytes); }
  const void *weights(int64_t panel) const { return data.get() + size_t(panel) * panel_bytes + kPanelWidth * sizeof(float); }
  int64_t columns(int64_t panel) const { return out - panel * kPanelWidth < kPanelWidth ? out - panel * kPanelWidth : kPanelWidth; }
};

PackedLayer pack_layer(const Layer &layer, bool half);

// c[r, 16p + j] = act(sum_k a[r, k] W[k, 16p + j] + bias[16p + j]) for r < rows, panel_begin <= p < panel_end.
// a is (rows, layer->in) with row stride lda; c has row stride ldc. Row r's result depends only on
// row r (never on `rows`, the panel range or the thread that runs it).
struct GemmTask {
  const float *a = nullptr;
  size_t lda = 0;
  int64_t rows = 0;
  const PackedLayer *layer = nullptr;
  int64_t panel_begin = 0, panel_end = 0;
  float *c = nullptr;
  size_t ldc = 0;
};
using GemmFn = void (*)(const GemmTask &);
// x[i] = act(x[i] + bias) for i < n: the epilogue of the kernel's GEMMs on a plain array (a channel plane
// that a convolution in scatter form (conv.h) has summed).
using ActivateFn = void (*)(float *x, int64_t n, float bias, Activation activation, float alpha);

struct Kernel {
  onnxgan_kernel id;
  const char *name;
  GemmFn gemm;  // any rows
  GemmFn gemv;  // rows == 1 only: a matrix-vector product with more independent FMA chains
  ActivateFn activate;
  // Rows that a thread takes through all layers at once for big batches: more rows read the weights
  // fewer times, but (rows, 1024) activations x 2 must stay in L2 (1 MB on AVX-512 parts, 512 KB on
  // many AVX2 ones).
  int64_t chunk_rows;
};

const Kernel &portable_kernel();
// A SIMD kernel (ONNXGAN_KERNEL_AVX2 or ONNXGAN_KERNEL_AVX512), or nullptr where it is not compiled
// in or the CPU lacks its instructions.
const Kernel *simd_kernel(onnxgan_kernel id);
// The kernel for a request (onnxgan_kernel); throws an argument error when it is unavailable.
const Kernel &select_kernel(int request);

}  // namespace onnxgan
#endif
