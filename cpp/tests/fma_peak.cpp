// Measures the machine's FMA peak (GFLOP/s) for the benchmark's "% of peak" column: 12 independent
// chains of fused multiply-adds (enough to hide the latency) on 1..N threads, for AVX2 and, where the
// CPU has it, AVX-512. Prints one JSON object, e.g. {"avx2": [98.1, 196.0], "avx512": [...]}.
//   onnxgan_fma_peak [MAX_THREADS=2]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

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

double gflops(double (*probe)(float), int threads) {
  std::vector<std::thread> pool;
  std::vector<double> flops(static_cast<size_t>(threads));
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { flops[size_t(t)] = probe(float(t)); });
  for (std::thread &thread : pool) thread.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0;
  for (double f : flops) total += f;
  return total / seconds / 1e9;
}

std::string row(double (*probe)(float), int max_threads) {
  std::string text = "[";
  for (int threads = 1; threads <= max_threads; ++threads) {
    double best = 0;
    for (int round = 0; round < 30; ++round) best = std::max(best, gflops(probe, threads));
    text += (threads > 1 ? ", " : "") + std::to_string(best);
  }
  return text + "]";
}

}  // namespace

int main(int argc, char **argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : 2;
  __builtin_cpu_init();
  std::string json = "{";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) json += "\"avx2\": " + row(probe_avx2, max_threads);
  if (__builtin_cpu_supports("avx512f")) json += std::string(json.size() > 1 ? ", " : "") + "\"avx512\": " + row(probe_avx512, max_threads);
  std::printf("%s}\n", json.c_str());
  return 0;
}
