// The forward pass of a validated generator: packed layers (and convolutions), the chosen kernel and a
// thread pool.
// Every output row is computed by the same instructions whatever thread or chunk it falls to, so
// results are identical for any thread count. The strategy depends on the batch size n:
//   n == 1:  each layer's panels (output columns) split across threads, the matrix-vector kernel;
//   n < 32:  the same with the GEMM kernel (one barrier per layer);
//   n >= 32: equal chunks of at most kernel.chunk_rows rows taken by threads in turn through all
//            layers (no barriers; the activations stay in the thread's L2).
// Conv generators (plan.steps), two ways to share the work:
//   by samples (two threads or more, n >= kBySamplesFrom per thread, images small enough): each thread
//            takes its own chunks of samples through the dense layers and every step alone, in its own
//            buffers (no barriers; a sample's activations never move between cores);
//   shared (otherwise: batch 1's latency): slices of at most kSliceSamples samples, the dense layers as
//            above into (slice, H, W, C), then each step over the whole slice, its work items (sample x
//            block of output pixels, conv.h) shared by the threads with one barrier per step.
// Either way the dense layers write (H, W, C) (the last layer's outputs reordered at load) and the last
// step's images go to `out` as (C, H, W).
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
  // By samples from this many samples per thread, in chunks of at most kSliceSamples samples whose two
  // image buffers (kOwnSliceFloats floats each at most) stay near the thread's L2. dcgan G, two threads,
  // quiet AVX-512 Xeon, % of the FMA peak at batch 64 / 256: shared 56 / 55, by samples: see docs/native.md.
  static constexpr int64_t kBySamplesFrom = 2, kOwnSliceFloats = int64_t(1) << 18;

  int64_t input_width() const { return layers_.front().in; }
  const float *input_rows(int64_t row0, int64_t rows, const float *z, const int64_t *labels, float *scratch) const;
  void by_columns(int64_t n, const float *z, const int64_t *labels, float *out, GemmFn function);
  int64_t balanced_chunk(int64_t n, int64_t limit) const;
  void dense_rows(int64_t row0, int64_t rows, const float *z, const int64_t *labels, float *out, int participant);
  void by_rows(int64_t n, const float *z, const int64_t *labels, float *out);
  void dense(int64_t n, const float *z, const int64_t *labels, float *out);
  void images(int64_t n, const float *z, const int64_t *labels, float *out);
  void images_shared(int64_t n, const float *z, const int64_t *labels, float *out);
  void images_by_samples(int64_t n, const float *z, const int64_t *labels, float *out);
  // The image steps over m samples x (H, W, C) -> out (m, C, H, W), x and y the two buffers; run(items, job)
  // calls job(item, participant) for every item: across the pool, or in turn on one thread.
  template <class Run>
  void steps(int64_t m, float *x, float *y, float *out, Run &&run);

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
  int64_t slice_ = 0, largest_ = 0;  // largest_: floats of the largest image on the way
  std::vector<float> images_[2];
  int64_t own_slice_ = 0;  // by samples: a thread's chunk at most (0: never by samples)
  std::vector<std::vector<float>> own_images_;  // per thread: two buffers (own_slice_, largest_)
  std::vector<std::vector<float>> block_scratch_;
};

}  // namespace onnxgan
#endif
