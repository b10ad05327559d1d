// The AVX2/FMA kernel (this file alone is compiled with -mavx2 -mfma -mf16c; cpu.cpp calls it only
// after checking the CPU). Tiles of 6 rows x 16 columns keep 12 accumulators in registers, as named
// variables (GCC 12 spills an accumulator array to memory); bias and activation are applied in
// registers before the one store. Weights are fp32 or fp16 (converted with F16C as they are loaded).
#include <immintrin.h>

#include "kernel.h"

namespace onnxgan {
namespace {

struct Fp32Weights {
  static void load(const void *panel, int64_t k, __m256 &lo, __m256 &hi) {
    const float *p = static_cast<const float *>(panel) + k * kPanelWidth;
    lo = _mm256_load_ps(p);
    hi = _mm256_load_ps(p + 8);
  }
};

struct Fp16Weights {
  static void load(const void *panel, int64_t k, __m256 &lo, __m256 &hi) {
    const auto *p = reinterpret_cast<const __m128i *>(static_cast<const uint16_t *>(panel) + k * kPanelWidth);
    lo = _mm256_cvtph_ps(_mm_load_si128(p));
    hi = _mm256_cvtph_ps(_mm_load_si128(p + 1));
  }
};

// tanh as a rational function (Eigen's fast float tanh: error within a few ulp, |x| clamped at 7.9
// where tanh rounds to +-1 in float).
__m256 tanh_approx(__m256 x) {
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-7.90531110763549805f)), _mm256_set1_ps(7.90531110763549805f));
  const __m256 x2 = _mm256_mul_ps(clamped, clamped);
  __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(2.00018790482477e-13f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-8.60467152213735e-11f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(5.12229709037114e-08f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(1.48572235717979e-05f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(6.37261928875436e-04f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(4.89352455891786e-03f));
  p = _mm256_mul_ps(clamped, p);
  __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(1.18534705686654e-04f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(2.26843463243900e-03f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(4.89352518554385e-03f));
  const __m256 tiny = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(0.0004f), _CMP_LT_OQ);
  return _mm256_blendv_ps(_mm256_div_ps(p, q), x, tiny);  // tanh(x) = x to float precision when tiny
}

__m256 activate(__m256 x, Activation activation, __m256 alpha) {
  switch (activation) {
    case Activation::kRelu: return _mm256_max_ps(x, _mm256_setzero_ps());
    case Activation::kLeakyRelu: return _mm256_blendv_ps(x, _mm256_mul_ps(alpha, x), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    case Activation::kTanh: return tanh_approx(x);
    case Activation::kSigmoid: {  // sigmoid(x) = (1 + tanh(x / 2)) / 2
      const __m256 half = _mm256_set1_ps(0.5f);
      return _mm256_fmadd_ps(tanh_approx(_mm256_mul_ps(x, half)), half, half);
    }
    case Activation::kNone: break;
  }
  return x;
}

// Adds the bias, activates and stores one row of a 16-column tile (masked when columns < 16).
struct Epilogue {
  const float *bias;
  Activation activation;
  __m256 alpha;
  int64_t columns;
  void store(float *c, __m256 lo, __m256 hi) const {
    lo = activate(_mm256_add_ps(lo, _mm256_load_ps(bias)), activation, alpha);
    hi = activate(_mm256_add_ps(hi, _mm256_load_ps(bias + 8)), activation, alpha);
    if (columns == kPanelWidth) {
      _mm256_storeu_ps(c, lo);
      _mm256_storeu_ps(c + 8, hi);
      return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i count = _mm256_set1_epi32(int(columns));
    _mm256_maskstore_ps(c, _mm256_cmpgt_epi32(count, lane), lo);
    _mm256_maskstore_ps(c + 8, _mm256_cmpgt_epi32(count, _mm256_add_epi32(lane, _mm256_set1_epi32(8))), hi);
  }
};

#define ONNXGAN_ROW(i)                                             \
  if constexpr (kRows > i) {                                       \
    const __m256 x = _mm256_broadcast_ss(a + (i) * lda + k);       \
    c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);                     \
    c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);                     \
  }
#define ONNXGAN_STORE(i) \
  if constexpr (kRows > i) epilogue.store(c + (i) * ldc, c##i##0, c##i##1);

// kRows (1..6) rows x one panel: c (kRows, 16) = act(a (kRows, in) . panel + bias).
template <int kRows, class Weights>
void tile(const float *a, size_t lda, int64_t in, const void *panel, const Epilogue &epilogue, float *c, size_t ldc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < in; ++k) {
    __m256 b0, b1;
    Weights::load(panel, k, b0, b1);
    ONNXGAN_ROW(0) ONNXGAN_ROW(1) ONNXGAN_ROW(2) ONNXGAN_ROW(3) ONNXGAN_ROW(4) ONNXGAN_ROW(5)
  }
  ONNXGAN_STORE(0) ONNXGAN_STORE(1) ONNXGAN_STORE(2) ONNXGAN_STORE(3) ONNXGAN_STORE(4) ONNXGAN_STORE(5)
}
#undef ONNXGAN_ROW
#undef ONNXGAN_STORE

Epilogue epilogue_for(const PackedLayer &layer, int64_t panel) {
  return Epilogue{layer.bias(panel), layer.activation, _mm256_set1_ps(layer.alpha), layer.columns(panel)};
}

// Panel by panel (the panel stays in cache), 6 rows at a time.
template <class Weights>
void gemm(const GemmTask &task) {
  const PackedLayer &layer = *task.layer;
  for (int64_t p = task.panel_begin; p < task.panel_end; ++p) {
    const Epilogue epilogue = epilogue_for(layer, p);
    const void *panel = layer.weights(p);
    float *c = task.c + p * kPanelWidth;
    int64_t r = 0;
    for (; r + 6 <= task.rows; r += 6)
      tile<6, Weights>(task.a + r * task.lda, task.lda, layer.in, panel, epilogue, c + r * task.ldc, task.ldc);
    const float *a = task.a + r * task.lda;
    float *c_rest = c + r * task.ldc;
    switch (task.rows - r) {
      case 5: tile<5, Weights>(a, task.lda, layer.in, panel, epilogue, c_rest, task.ldc); break;
      case 4: tile<4, Weights>(a, task.lda, layer.in, panel, epilogue, c_rest, task.ldc); break;
      case 3: tile<3, Weights>(a, task.lda, layer.in, panel, epilogue, c_rest, task.ldc); break;
      case 2: tile<2, Weights>(a, task.lda, layer.in, panel, epilogue, c_rest, task.ldc); break;
      case 1: tile<1, Weights>(a, task.lda, layer.in, panel, epilogue, c_rest, task.ldc); break;
      default: break;
    }
  }
}

// One row: the k loop split four ways gives 8 independent FMA chains (a 1-row tile has only 2 and
// would wait on FMA latency); the batch-1 case is bound by reading the weights.
template <class Weights>
void gemv(const GemmTask &task) {
  const PackedLayer &layer = *task.layer;
  const float *a = task.a;
  for (int64_t p = task.panel_begin; p < task.panel_end; ++p) {
    const void *panel = layer.weights(p);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    int64_t k = 0;
    for (; k + 4 <= layer.in; k += 4) {
      __m256 b0, b1, b2, b3, b4, b5, b6, b7;
      Weights::load(panel, k, b0, b1);
      Weights::load(panel, k + 1, b2, b3);
      Weights::load(panel, k + 2, b4, b5);
      Weights::load(panel, k + 3, b6, b7);
      const __m256 x0 = _mm256_broadcast_ss(a + k), x1 = _mm256_broadcast_ss(a + k + 1);
      const __m256 x2 = _mm256_broadcast_ss(a + k + 2), x3 = _mm256_broadcast_ss(a + k + 3);
      s0 = _mm256_fmadd_ps(x0, b0, s0);
      s1 = _mm256_fmadd_ps(x0, b1, s1);
      s2 = _mm256_fmadd_ps(x1, b2, s2);
      s3 = _mm256_fmadd_ps(x1, b3, s3);
      s4 = _mm256_fmadd_ps(x2, b4, s4);
      s5 = _mm256_fmadd_ps(x2, b5, s5);
      s6 = _mm256_fmadd_ps(x3, b6, s6);
      s7 = _mm256_fmadd_ps(x3, b7, s7);
    }
    for (; k < layer.in; ++k) {
      __m256 b0, b1;
      Weights::load(panel, k, b0, b1);
      const __m256 x = _mm256_broadcast_ss(a + k);
      s0 = _mm256_fmadd_ps(x, b0, s0);
      s1 = _mm256_fmadd_ps(x, b1, s1);
    }
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s4, s6));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(s1, s3), _mm256_add_ps(s5, s7));
    epilogue_for(layer, p).store(task.c + p * kPanelWidth, lo, hi);
  }
}

void gemm_any(const GemmTask &task) { task.layer->half ? gemm<Fp16Weights>(task) : gemm<Fp32Weights>(task); }
void gemv_any(const GemmTask &task) { task.layer->half ? gemv<Fp16Weights>(task) : gemv<Fp32Weights>(task); }

}  // namespace

const Kernel &avx2_kernel_impl() {
  static const Kernel kernel{ONNXGAN_KERNEL_AVX2, "avx2", gemm_any, gemv_any};
  return kernel;
}

}  // namespace onnxgan
