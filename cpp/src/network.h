// The forward pass of a validated MLP generator: packed layers, the chosen kernel and a thread pool.
// Every output row is computed by the same instructions whatever thread or chunk it falls to, so
// results are identical for any thread count. The strategy depends on the batch size n:
//   n == 1:  each layer's panels (output columns) split across threads, the matrix-vector kernel;
//   n < 32:  the same with the GEMM kernel (one barrier per layer);
//   n >= 32: equal chunks of at most kernel.chunk_rows rows taken by threads in turn through all
//            layers (no barriers; the activations stay in the thread's L2).
#ifndef ONNXGAN_NETWORK_H
#define ONNXGAN_NETWORK_H

#include <vector>

#include "kernel.h"
#include "plan.h"
#include "thread_pool.h"

namespace onnxgan {

class Network {
 public:
  Network(Plan plan, const Kernel &kernel, bool half, int threads);

  // z (n, latent_dim), labels (n,) already checked (nullptr for unconditional) -> out (n, image_size).
  void generate(int64_t n, const float *z, const int64_t *labels, float *out);

  const Plan &plan() const { return plan_; }  // shapes and metadata; the weights live in the packed layers
  const Kernel &kernel() const { return kernel_; }
  int threads() const { return pool_.size(); }
  bool half() const { return half_; }

 private:
  static constexpr int64_t kColumnSplitBelow = 32;

  int64_t input_width() const { return layers_.front().in; }
  const float *input_rows(int64_t row0, int64_t rows, const float *z, const int64_t *labels, float *scratch) const;
  void by_columns(int64_t n, const float *z, const int64_t *labels, float *out);
  void by_rows(int64_t n, const float *z, const int64_t *labels, float *out);

  Plan plan_;
  const Kernel &kernel_;
  bool half_;
  std::vector<PackedLayer> layers_;
  int64_t max_width_ = 0;
  ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;  // per thread: input chunk + two activation buffers
};

}  // namespace onnxgan
#endif
