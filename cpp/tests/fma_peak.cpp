// Measures one core's FMA peak (GFLOP/s) for the benchmark's "% of peak" column: 12 independent chains
// of fused multiply-adds (enough to hide the latency), for AVX2 and, where the CPU has it, AVX-512; the
// best of 30 short rounds, so that a busy machine's other tenants rarely spoil all of them. The peak of
// t threads is t times this (cores have their own FMA units). Prints one JSON object, e.g.
// {"avx2": 98.1, "avx512": 196.3}.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

constexpr long kIterations = 2'000'000;  // a few ms: short rounds, the best of many, on a busy machine

// One probe per ISA, compiled for it with a target attribute: returns the FLOPs done.
#define ONNXGAN_PROBE(name, isa, Reg, fma, set1)                                     \
  __attribute__((target(isa))) double name(float seed) {                             \
    const Reg a = set1(0.999999f), b = set1(1e-7f);                                 \
    Reg c[12];                                                                       \
    for (int i = 0; i < 12; ++i) c[i] = set1(seed + float(i));                       \
    for (long k = 0; k < kIterations; ++k) {                                         \
      _Pragma("GCC unroll 12") for (int i = 0; i < 12; ++i) c[i] = fma(a, c[i], b);   \
    }                                                                                \
    volatile float sink = 0;                                                         \
    for (int i = 0; i < 12; ++i) sink = sink + reinterpret_cast<float *>(&c[i])[0];  \
    return 2.0 * 12 * kIterations * (sizeof(Reg) / sizeof(float));                  \
  }
ONNXGAN_PROBE(probe_avx2, "avx2,fma", __m256, _mm256_fmadd_ps, _mm256_set1_ps)
ONNXGAN_PROBE(probe_avx512, "avx512f", __m512, _mm512_fmadd_ps, _mm512_set1_ps)
#undef ONNXGAN_PROBE

std::string best_gflops(double (*probe)(float)) {
  double best = 0;
  for (int round = 0; round < 30; ++round) {
    const auto start = std::chrono::steady_clock::now();
    const double flops = probe(float(round));
    best = std::max(best, flops / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 1e9);
  }
  return std::to_string(best);
}

}  // namespace

int main() {
  __builtin_cpu_init();
  std::string json = "{";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) json += "\"avx2\": " + best_gflops(probe_avx2);
  if (__builtin_cpu_supports("avx512f")) json += std::string(json.size() > 1 ? ", " : "") + "\"avx512\": " + best_gflops(probe_avx512);
  std::printf("%s}\n", json.c_str());
  return 0;
}
