// SplitMix64 words -> Box-Muller in float64 -> float32, as specified in runtime/latent.py.
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

}  // namespace

void standard_normal(uint64_t seed, size_t count, float *out) {
  const double two_pow_minus_53 = 1.0 / 9007199254740992.0;
  const double two_pi = 2.0 * 3.141592653589793;  // numpy: 2.0 * np.pi, rounded the same way
  for (size_t j = 0; 2 * j < count; ++j) {
    const double u1 = (double(splitmix64(seed, 2 * j) >> 11) + 1.0) * two_pow_minus_53;
    const double u2 = double(splitmix64(seed, 2 * j + 1) >> 11) * two_pow_minus_53;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = two_pi * u2;
    out[2 * j] = float(radius * std::cos(angle));
    if (2 * j + 1 < count) out[2 * j + 1] = float(radius * std::sin(angle));
  }
}

}  // namespace onnxgan
