// The portable kernel: plain C++ loops that any compiler vectorises a little. It is the fallback on
// CPUs without AVX2 (ARM included) and the reference the SIMD kernels are tested against.
#include <cmath>

#include "fp16.h"
#include "kernel.h"

namespace onnxgan {
namespace {

// The epilogue activations, exact to float rounding: the reference for the SIMD kernels' approximations.
float activate_reference(float x, Activation activation, float alpha) {
  switch (activation) {
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kLeakyRelu: return x < 0.0f ? alpha * x : x;
    case Activation::kTanh: return std::tanh(x);
    case Activation::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::kNone: break;
  }
  return x;
}

template <bool kHalf>
float weight_at(const void *weights, size_t index) {
  if constexpr (kHalf)
    return half_to_float(static_cast<const uint16_t *>(weights)[index]);
  else
    return static_cast<const float *>(weights)[index];
}

template <bool kHalf>
void gemm(const GemmTask &task) {
  const PackedLayer &layer = *task.layer;
  for (int64_t p = task.panel_begin; p < task.panel_end; ++p) {
    const float *bias = layer.bias(p);
    const void *weights = layer.weights(p);
    const int64_t columns = layer.columns(p);
    for (int64_t r = 0; r < task.rows; ++r) {
      const float *a = task.a + size_t(r) * task.lda;  // (in,)
      float acc[kPanelWidth] = {};
      for (int64_t k = 0; k < layer.in; ++k)
        for (int64_t j = 0; j < kPanelWidth; ++j) acc[j] += a[k] * weight_at<kHalf>(weights, size_t(k * kPanelWidth + j));
      float *c = task.c + size_t(r) * task.ldc + size_t(p * kPanelWidth);
      for (int64_t j = 0; j < columns; ++j) c[j] = activate_reference(acc[j] + bias[j], layer.activation, layer.alpha);
    }
  }
}

void gemm_any(const GemmTask &task) { task.layer->half ? gemm<true>(task) : gemm<false>(task); }

void activate_array(float *x, int64_t n, float bias, Activation activation, float alpha) {
  for (int64_t i = 0; i < n; ++i) x[i] = activate_reference(x[i] + bias, activation, alpha);
}

}  // namespace

const Kernel &portable_kernel() {
  static const Kernel kernel{ONNXGAN_KERNEL_PORTABLE, "portable", gemm_any, gemm_any, activate_array, 48};
  return kernel;
}

}  // namespace onnxgan
