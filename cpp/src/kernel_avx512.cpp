// The AVX-512 kernel: kernel_simd.h over 16-lane registers, 12 x 32 tiles (24 accumulators of 32
// registers; each vector is one 16-column panel). This file alone is compiled with -mavx512f (+ FMA,
// F16C); cpu.cpp checks the CPU first.
#include <immintrin.h>

#include "kernel_simd.h"

namespace onnxgan {
namespace {

struct Avx512 {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kMaxRows = 12;
  // 16 rows as 8 + 8 rather than 12 + 4, whose 8 accumulators barely cover the FMA latency: Zen 5,
  // median per call, batch 16 one thread 208 -> 200 us, two threads 140 -> 131.
  static constexpr bool kBalancedHeights = true;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float v) { return _mm512_set1_ps(v); }
  static Reg load(const float *p) { return _mm512_load_ps(p); }
  static Reg load_half(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i *>(p))); }
  static Reg broadcast(const float *p) { return _mm512_set1_ps(*p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm512_min_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static Reg where_negative(Reg x, Reg negative) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero(), _CMP_LT_OQ), x, negative); }
  static Reg where_tiny(Reg x, Reg otherwise, float bound) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(_mm512_abs_ps(x), set1(bound), _CMP_LT_OQ), otherwise, x);
  }
  static Reg load_columns(const float *c, int64_t columns) { return _mm512_maskz_loadu_ps(__mmask16((1u << columns) - 1), c); }
  static void store(float *c, Reg x, int64_t columns) {  // the first `columns` (1..16) lanes
    _mm512_mask_storeu_ps(c, __mmask16((1u << columns) - 1), x);
  }
};

}  // namespace

const Kernel &avx512_kernel_impl() {
  static const Kernel kernel{ONNXGAN_KERNEL_AVX512, "avx512", gemm_any<Avx512>, gemv_any<Avx512>, activate_array<Avx512>, 96};
  return kernel;
}

}  // namespace onnxgan
