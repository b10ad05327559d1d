// The latent RNG and its truncation rule against golden values from runtime/latent.py (bit for bit),
// through the C ABI.
#include <cmath>
#include <cstring>
#include <vector>

#include "check.h"
#include "onnxgan/sampler.h"

namespace {

void expect_latent(int64_t n, int64_t dim, uint64_t seed, const std::vector<float> &expected, double truncation = 0.0) {
  std::vector<float> z(expected.size() + 1, 123.0f);  // one extra to catch writes past the end
  CHECK(onnxgan_latent(n, dim, seed, truncation, z.data(), expected.size() * sizeof(float)) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(std::memcmp(z.data(), expected.data(), expected.size() * sizeof(float)) == 0,
        "latent(" + std::to_string(n) + ", " + std::to_string(dim) + ", " + std::to_string(seed) + ") differs from Python");
  CHECK(z.back() == 123.0f, "wrote past the end");
}

}  // namespace

int main() {
  // python -c "from onnxgan.runtime.latent import latent; print([float(v).hex() for v in latent(1, 7, 42).ravel()])"
  expect_latent(1, 7, 42, {0x1.a8ac4cp-2f, 0x1.4e2c3cp-1f, -0x1.c8a55p-1f, 0x1.53ab5ep+0f, 0x1.bac69cp+0f, -0x1.e2279ap+0f, 0x1.175b9p-1f});
  expect_latent(3, 1, 18446744073709551615ull, {0x1.9d977cp-2f, -0x1.fa343ap-3f, -0x1.8eccbcp+0f});  // odd total: drops a sine
  expect_latent(2, 3, 0, {-0x1.cf9fbap-2f, 0x1.a9813ep-3f, 0x1.53470ep+1f, -0x1.f63166p-2f, -0x1.fa2a52p-1f, 0x1.df420ap+0f});
  // truncated-resample-v1: python -c "from onnxgan.runtime.latent import latent; print([float(v).hex() for v in
  // latent(2, 5, 3, truncation=0.5).ravel()])" (untruncated: -0.64, -1.99, 0.89, 0.437, -1.15, ...)
  expect_latent(2, 5, 3, {0x1.c3eeaep-3f, -0x1.1f695ap-2f, 0x1.6f3facp-2f, 0x1.bfce78p-2f, 0x1.972be2p-3f,
                          -0x1.7dc43p-2f, 0x1.6756aep-2f, -0x1.08da5p-3f, 0x1.92164ap-3f, -0x1.c3365p-2f}, 0.5);
  std::vector<float> truncated(1000 * 10);
  CHECK(onnxgan_latent(1000, 10, 1, 0.3, truncated.data(), truncated.size() * 4) == ONNXGAN_OK, onnxgan_last_error());
  for (float v : truncated) CHECK(std::fabs(v) <= 0.3f, "a truncated value exceeds the threshold");
  for (double bad : {0.05, -1.0, std::nan("")})
    CHECK(onnxgan_latent(1, 10, 1, bad, truncated.data(), 40) == ONNXGAN_ERROR_ARGUMENT, "truncation below 0.1 or NaN");
  // A batch is a prefix of a bigger one.
  std::vector<float> small(4 * 5), big(9 * 5);
  CHECK(onnxgan_latent(4, 5, 9, 0.0, small.data(), small.size() * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(onnxgan_latent(9, 5, 9, 0.0, big.data(), big.size() * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(std::memcmp(small.data(), big.data(), small.size() * 4) == 0, "rows depend on n");
  // Bad arguments are errors, never crashes.
  CHECK(onnxgan_latent(2, 5, 1, 0.0, big.data(), 9 * 4) == ONNXGAN_ERROR_ARGUMENT, "a too small buffer must be refused");
  CHECK(onnxgan_latent(-1, 5, 1, 0.0, big.data(), big.size() * 4) == ONNXGAN_ERROR_ARGUMENT, "n < 0 must be refused");
  CHECK(onnxgan_latent(1, 0, 1, 0.0, big.data(), big.size() * 4) == ONNXGAN_ERROR_ARGUMENT, "latent_dim 0 must be refused");
  CHECK(onnxgan_latent(INT64_MAX, 1 << 20, 1, 0.0, big.data(), big.size() * 4) == ONNXGAN_ERROR_ARGUMENT, "overflow must be refused");
  CHECK(std::strlen(onnxgan_last_error()) > 0, "an error has a message");
  std::puts("test_latent: ok");
  return 0;
}
