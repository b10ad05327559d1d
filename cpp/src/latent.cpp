// SplitMix64 words -> Box-Muller in float64 -> float32, and the truncation rule truncated-resample-v1,
// as specified in runtime/latent.py.
#include "latent.h"

#include <cmath>

namespace onnxgan {
namespace {

uint64_t splitmix64(uint64_t seed, uint64_t k) {  // word k of seed
  uint64_t x = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Normal pair j of seed in polar form (float64): z[2j] = radius cos(angle), z[2j+1] = radius sin(angle).
struct Polar {
  double radius, angle;
};

Polar polar(uint64_t seed, uint64_t j) {
  const double two_pow_minus_53 = 1.0 / 9007199254740992.0;
  const double two_pi = 2.0 * 3.141592653589793;  // numpy: 2.0 * np.pi, rounded the same way
  const double u1 = (double(splitmix64(seed, 2 * j) >> 11) + 1.0) * two_pow_minus_53;
  const double u2 = double(splitmix64(seed, 2 * j + 1) >> 11) * two_pow_minus_53;
  return {std::sqrt(-2.0 * std::log(u1)), two_pi * u2};
}

float normal_at(uint64_t seed, uint64_t number) {  // normal number m of seed's stream
  const Polar p = polar(seed, number >> 1);
  return float(number & 1 ? p.radius * std::sin(p.angle) : p.radius * std::cos(p.angle));
}

}  // namespace

void standard_normal(uint64_t seed, size_t count, float *out) {
  for (size_t j = 0; 2 * j < count; ++j) {
    const Polar p = polar(seed, j);
    out[2 * j] = float(p.radius * std::cos(p.angle));
    if (2 * j + 1 < count) out[2 * j + 1] = float(p.radius * std::sin(p.angle));
  }
}

void truncate(uint64_t seed, size_t count, float truncation, float *values) {
  for (size_t c = 0; c < count; ++c)
    for (uint64_t attempt = 1; std::fabs(values[c]) > truncation; ++attempt)
      values[c] = normal_at(seed, attempt * kAttemptStride + c);
}

}  // namespace onnxgan
