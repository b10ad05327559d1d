// The latent RNG "splitmix64-boxmuller-v1" and the truncation rule "truncated-resample-v1", bit for
// bit the same as runtime/latent.py (its docstring is the specification).
#ifndef ONNXGAN_LATENT_H
#define ONNXGAN_LATENT_H

#include <cstddef>
#include <cstdint>

namespace onnxgan {

constexpr double kMinTruncation = 0.1;               // runtime/latent.py MIN_TRUNCATION
constexpr uint64_t kAttemptStride = uint64_t(1) << 40;  // attempt a of number c is number a * 2**40 + c

// Fills out[0..count) with the first `count` standard normal values of `seed` (float32).
void standard_normal(uint64_t seed, size_t count, float *out);

// values[0..count) = standard_normal(seed, count); redraws each |value| > truncation (already
// float32, >= kMinTruncation; count <= kAttemptStride) as the rule says.
void truncate(uint64_t seed, size_t count, float truncation, float *values);

}  // namespace onnxgan
#endif
