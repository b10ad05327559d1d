// The SIMD kernels (AVX2, AVX-512) against the portable reference on random layers of awkward shapes (0, 1, odd,
// not multiples of 16), fp32 and fp16 weights; identical results for 1, 2 and 3 threads, and with
// every thread on one CPU; the fast tanh and sigmoid against libm.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../src/network.h"
#include "check.h"

#ifdef __linux__
#include <sched.h>
#endif

using namespace onnxgan;

namespace {

std::mt19937 rng(1234);

Plan random_plan(int64_t latent, const std::vector<int64_t> &widths, Activation last) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Plan plan;
  plan.latent_dim = latent;
  int64_t in = latent;
  for (size_t l = 0; l < widths.size(); ++l) {
    Layer layer;
    layer.in = in;
    layer.out = widths[l];
    for (int64_t i = 0; i < in * widths[l]; ++i) layer.weight.push_back(normal(rng) / std::sqrt(float(in)));
    for (int64_t j = 0; j < widths[l]; ++j) layer.bias.push_back(0.1f * normal(rng));
    const Activation hidden[] = {Activation::kLeakyRelu, Activation::kRelu, Activation::kSigmoid, Activation::kNone};
    layer.activation = l + 1 == widths.size() ? last : hidden[l % 4];
    layer.alpha = 0.2f;
    plan.layers.push_back(layer);
    in = widths[l];
  }
  plan.width = in;
  return plan;
}

std::vector<float> run(const Plan &plan, const Kernel &kernel, bool half, int threads, const std::vector<float> &z, int64_t n) {
  Network network(plan, kernel, half, threads);
  std::vector<float> out(size_t(n * plan.layers.back().out) + 1, -7.0f);
  network.generate(n, z.data(), nullptr, out.data());
  CHECK(out.back() == -7.0f, "wrote past the output");
  out.pop_back();
  return out;
}

std::string describe(int64_t latent, const std::vector<int64_t> &widths, int64_t n) {
  std::string text = "n=" + std::to_string(n) + " widths " + std::to_string(latent);
  for (int64_t w : widths) text += "-" + std::to_string(w);
  return text;
}

void compare_kernels(const Kernel &fast, bool half) {
  const std::vector<std::vector<int64_t>> shapes = {{1}, {16}, {17, 3}, {33, 1, 40}, {100, 64, 31}, {256, 48}};
  const int64_t latents[] = {1, 5, 100};
  // Tile heights: every one from 1 to 12 (12 = a full AVX-512 tile), several tiles per column (AVX-512
  // balanced: 13 = 6 + 7, 16 = 8 + 8; AVX2 full ones and the rest: 16 = 6 + 6 + 4), and row chunks of
  // both thread splits (97, 200).
  const int64_t batches[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 25, 31, 32, 33, 61, 97, 200};
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto &widths : shapes)
    for (int64_t latent : latents) {
      const Plan plan = random_plan(latent, widths, Activation::kTanh);
      std::vector<float> z(size_t(200 * latent));
      for (float &v : z) v = normal(rng);
      for (int64_t n : batches) {
        const std::vector<float> reference = run(plan, portable_kernel(), half, 1, z, n);
        const std::vector<float> one = run(plan, fast, half, 1, z, n);
        for (size_t i = 0; i < reference.size(); ++i)
          CHECK(std::fabs(one[i] - reference[i]) <= 2e-6f * (1.0f + std::fabs(reference[i])),
                std::string(fast.name) + (half ? " fp16 " : " fp32 ") + describe(latent, widths, n) + " element " +
                    std::to_string(i) + ": " + std::to_string(one[i]) + " vs " + std::to_string(reference[i]));
        for (int threads : {2, 3})
          CHECK(run(plan, fast, half, threads, z, n) == one,
                std::string(fast.name) + " " + describe(latent, widths, n) + " differs with " + std::to_string(threads) + " threads");
      }
    }
}

// One layer with weight 1 and bias 0 applies the activation to its input: (n, 1) -> (n, 1).
void check_activation(const Kernel &kernel, Activation activation, double (*exact)(double), float tolerance) {
  Plan plan;
  plan.latent_dim = 1;
  plan.layers.push_back(Layer{1, 1, {1.0f}, {0.0f}, activation, 0.0f});
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.0037f) x.push_back(v);
  x.insert(x.end(), {0.0f, -0.0f, 1e-30f, 3e-4f, -5e-4f, 40.0f, -90.0f});
  const std::vector<float> y = run(plan, kernel, false, 1, x, int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i)
    CHECK(std::fabs(double(y[i]) - exact(double(x[i]))) <= tolerance,
          std::string(kernel.name) + " activation at " + std::to_string(x[i]) + ": " + std::to_string(y[i]));
}

// Every thread on one CPU (as a busy machine or a pinned process may leave them): the workers find
// themselves on the caller's CPU, cannot move off it and leave each job to the caller; the results are
// still complete and the same as with one thread.
void check_one_cpu(const Kernel &kernel) {
#ifdef __linux__
  cpu_set_t allowed, one;
  CHECK(sched_getaffinity(0, sizeof allowed, &allowed) == 0, "sched_getaffinity");
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) {
    std::printf("test_kernels: cannot pin to one CPU here: the one-CPU check skipped\n");
    return;
  }
  const Plan plan = random_plan(100, {256, 512, 784}, Activation::kTanh);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> z(size_t(40 * 100));
  for (float &v : z) v = normal(rng);
  for (int64_t n : {1, 16, 40}) {
    const std::vector<float> one_thread = run(plan, kernel, false, 1, z, n);
    CHECK(run(plan, kernel, false, 2, z, n) == one_thread, std::string(kernel.name) + " on one CPU, n=" + std::to_string(n));
  }
  CHECK(sched_setaffinity(0, sizeof allowed, &allowed) == 0, "sched_setaffinity");
#else
  (void)kernel;
#endif
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double tanh_exact(double x) { return std::tanh(x); }

}  // namespace

int main() {
  compare_kernels(portable_kernel(), false);  // thread invariance of the reference itself
  for (onnxgan_kernel id : {ONNXGAN_KERNEL_AVX2, ONNXGAN_KERNEL_AVX512}) {
    const Kernel *fast = simd_kernel(id);
    if (!fast) {
      std::printf("test_kernels: kernel %d is not available on this build or CPU: skipped\n", int(id));
      continue;
    }
    compare_kernels(*fast, false);
    compare_kernels(*fast, true);
    check_activation(*fast, Activation::kTanh, tanh_exact, 5e-7f);
    check_activation(*fast, Activation::kSigmoid, sigmoid, 5e-7f);
    check_one_cpu(*fast);
  }
  check_activation(portable_kernel(), Activation::kTanh, tanh_exact, 2e-7f);
  check_activation(portable_kernel(), Activation::kSigmoid, sigmoid, 2e-7f);
  std::puts("test_kernels: ok");
  return 0;
}
