// The forward pass of a validated generator: packed layers (and convolutions), the chosen kernel and a
// thread pool.
// Every output row is computed by the same instructions whatever thread or chunk it falls to, so
// results are identical for any thread count. The strategy depends on the batch size n:
//   n == 1:  each layer's panels (output columns) split across threads, the matrix-vector kernel;
//   n < 32:  the same with the GEMM kernel (one barrier per layer);
//   n >= 32: equal chunks of at most kernel.chunk_rows rows taken by threads in turn through all
//            layers (no barriers; the activations stay in the thread's L2).
// Conv generators (plan.steps) go in slices of at most kSliceSamples samples: the dense layers as above
// into (slice, H, W, C) (the last layer's outputs reordered at load), then each step over the whole
// slice, its work items (sample x block of output pixels, conv.h) shared by the threads with one
// barrier per step; the last step's images go to `out` as (C, H, W).
#ifndef ONNXGAN_NETWORK_H
#define ONNXGAN_NETWORK_H

#include <vector>

#include "conv.h"
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
  // Samples per slice of a conv generator's batch: enough work items per step for the threads, few
  // enough for the slice's images to stay in L2/L3 (and bounded by kSliceFloats).
  static constexpr int64_t kSliceSamples = 16, kSliceFloats = int64_t(1) << 24;
  // Output pixels per work item of a gather-form convolution: its im2col rows stay near L1 (24 x 512
  // floats for dcgan's first ConvTranspose). dcgan G, two threads, batch 256, median us per sample on a
  // loaded AVX-512 Xeon: 46.8 with 24, 49.3 with 96 (the kernel's chunk_rows), 47.9 with 12; 32-sample
  // slices measured the same as 16.
  static constexpr int64_t kConvBlockRows = 24;

  int64_t input_width() const { return layers_.front().in; }
  const float *input_rows(int64_t row0, int64_t rows, const float *z, const int64_t *labels, float *scratch) const;
  void by_columns(int64_t n, const float *z, const int64_t *labels, float *out);
  void by_rows(int64_t n, const float *z, const int64_t *labels, float *out);
  void dense(int64_t n, const float *z, const int64_t *labels, float *out);
  void images(int64_t n, const float *z, const int64_t *labels, float *out);

  Plan plan_;
  const Kernel &kernel_;
  bool half_;
  std::vector<PackedLayer> layers_;
  int64_t max_width_ = 0;
  ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;  // per thread: input chunk + two activation buffers
  // Conv generators: one PackedConv per conv step (convs_[i] for plan_.steps[i]; unused for upsampling),
  // two slices of images (slice_, largest image), per thread the scratch of one conv block.
  std::vector<PackedConv> convs_;
  int64_t slice_ = 0;
  std::vector<float> images_[2];
  std::vector<std::vector<float>> block_scratch_;
};

}  // namespace onnxgan
#endif
