// The latent RNG "splitmix64-boxmuller-v1", bit for bit the same as runtime/latent.py (its docstring
// is the specification).
#ifndef ONNXGAN_LATENT_H
#define ONNXGAN_LATENT_H

#include <cstddef>
#include <cstdint>

namespace onnxgan {

// Fills out[0..count) with the first `count` standard normal values of `seed` (float32).
void standard_normal(uint64_t seed, size_t count, float *out);

}  // namespace onnxgan
#endif
