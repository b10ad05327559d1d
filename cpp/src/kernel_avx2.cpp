// The AVX2/FMA kernel: kernel_simd.h over 8-lane registers, 6 x 16 tiles (12 accumulators of 16
// registers). This file alone is compiled with -mavx2 -mfma -mf16c; cpu.cpp checks the CPU first.
#include <immintrin.h>

#include "kernel_simd.h"

namespace onnxgan {
namespace {

struct Avx2 {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kMaxRows = 6;
  // 16 rows as 6 + 6 + 4: the balanced 5 + 5 + 6 measured slower on Zen 5 (median per call, batch 16
  // one thread 399 against 412 us, two threads 244 against 260).
  static constexpr bool kBalancedHeights = false;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float v) { return _mm256_set1_ps(v); }
  static Reg load(const float *p) { return _mm256_load_ps(p); }
  static Reg load_half(const uint16_t *p) { return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i *>(p))); }
  static Reg broadcast(const float *p) { return _mm256_broadcast_ss(p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm256_div_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm256_min_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  // x < 0 ? negative : x
  static Reg where_negative(Reg x, Reg negative) { return _mm256_blendv_ps(x, negative, _mm256_cmp_ps(x, zero(), _CMP_LT_OQ)); }
  // |x| < bound ? x : otherwise
  static Reg where_tiny(Reg x, Reg otherwise, float bound) {
    return _mm256_blendv_ps(otherwise, x, _mm256_cmp_ps(_mm256_andnot_ps(set1(-0.0f), x), set1(bound), _CMP_LT_OQ));
  }
  static __m256i first_lanes(int64_t columns) {  // all ones in lanes 0 .. columns - 1
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(columns)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Reg load_columns(const float *c, int64_t columns) {  // the first `columns` (1..8) lanes, zeros after
    if (columns == kLanes) return _mm256_loadu_ps(c);
    return _mm256_maskload_ps(c, first_lanes(columns));
  }
  static void store(float *c, Reg x, int64_t columns) {  // the first `columns` (1..8) lanes
    if (columns == kLanes) return _mm256_storeu_ps(c, x);
    _mm256_maskstore_ps(c, first_lanes(columns), x);
  }
};

}  // namespace

const Kernel &avx2_kernel_impl() {
  static const Kernel kernel{ONNXGAN_KERNEL_AVX2, "avx2", gemm_any<Avx2>, gemv_any<Avx2>, activate_array<Avx2>, 48};
  return kernel;
}

}  // namespace onnxgan
