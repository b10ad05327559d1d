// The forward strategies of network.h.
#include "network.h"

#include <algorithm>
#include <cstring>

namespace onnxgan {

namespace {

// A conv generator's last dense layer with its outputs reordered from (C, H, W) to (H, W, C), so that it
// writes the channels-last image the steps read (conv.h) and no transposition pass is needed.
void reorder_to_channels_last(Layer &layer, int64_t channels) {
  const int64_t pixels = layer.out / channels;
  std::vector<float> weight(layer.weight.size()), bias(layer.bias.size());
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t p = 0; p < pixels; ++p) {
      const int64_t from = c * pixels + p, to = p * channels + c;
      std::copy_n(layer.weight.begin() + from * layer.in, layer.in, weight.begin() + to * layer.in);
      bias[size_t(to)] = layer.bias[size_t(from)];
    }
  layer.weight = std::move(weight);
  layer.bias = std::move(bias);
}

}  // namespace

Network::Network(Plan plan, const Kernel &kernel, bool half, int threads)
    : plan_(std::move(plan)), kernel_(kernel), half_(half), pool_(threads) {
  if (!plan_.steps.empty()) reorder_to_channels_last(plan_.layers.back(), plan_.steps.front().in_shape[0]);
  for (Layer &layer : plan_.layers) {
    layers_.push_back(pack_layer(layer, half));
    max_width_ = std::max(max_width_, layer.out);
    layer.weight = {};  // packed now: keep only the shapes
    layer.bias = {};
  }
  const int64_t rows = std::max(kernel_.chunk_rows, kColumnSplitBelow);
  scratch_.assign(size_t(threads), std::vector<float>(size_t(rows * (input_width() + 2 * max_width_))));
  if (plan_.steps.empty()) return;
  int64_t largest = layers_.back().out;
  size_t block_floats = 0;
  for (ImageStep &step : plan_.steps) {
    largest = std::max(largest, step.out_size());
    convs_.push_back(step.kind == ImageStep::kConv ? pack_conv(step, half, kConvBlockRows) : PackedConv{});
    block_floats = std::max(block_floats, convs_.back().scratch_floats());
    step.conv.weight = {};  // packed now: keep only the shapes
    step.conv.bias = {};
  }
  largest_ = largest;
  slice_ = std::max<int64_t>(1, std::min(kSliceSamples, kSliceFloats / largest));
  for (std::vector<float> &buffer : images_) buffer.resize(size_t(slice_ * largest));
  block_scratch_.assign(size_t(threads), std::vector<float>(block_floats));
  // 0 (the shared path only) for one thread, where it is the same work, or images too large to pay
  own_slice_ = threads > 1 ? std::min({kSliceSamples, kernel_.chunk_rows, kOwnSliceFloats / largest}) : 0;
  if (own_slice_) own_images_.assign(size_t(threads), std::vector<float>(size_t(2 * own_slice_ * largest)));
}

// Rows row0 .. row0+rows of the first layer's input: z itself, or concat(z, embedding[label]) built
// in scratch (rows, input_width).
const float *Network::input_rows(int64_t row0, int64_t rows, const float *z, const int64_t *labels, float *scratch) const {
  const int64_t latent = plan_.latent_dim, embed = plan_.embed_dim;
  if (plan_.num_classes == 0) return z + row0 * latent;
  for (int64_t r = 0; r < rows; ++r) {
    float *x = scratch + r * input_width();
    const float *z_row = z + (row0 + r) * latent;
    const float *e_row = plan_.embedding.data() + labels[row0 + r] * embed;
    std::memcpy(x + (plan_.embedding_first ? embed : 0), z_row, size_t(latent) * sizeof(float));
    std::memcpy(x + (plan_.embedding_first ? 0 : latent), e_row, size_t(embed) * sizeof(float));
  }
  return scratch;
}

void Network::by_columns(int64_t n, const float *z, const int64_t *labels, float *out, GemmFn function) {
  float *buffers = scratch_[0].data();  // input (n, in) | activations (n, max_width) x 2
  const float *a = input_rows(0, n, z, labels, buffers);
  size_t lda = size_t(input_width());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const PackedLayer &layer = layers_[l];
    const bool last = l + 1 == layers_.size();
    float *c = last ? out : buffers + n * (input_width() + int64_t(l % 2) * max_width_);
    // One item per thread, each a contiguous range of whole panel pairs (the AVX-512 tiles take two); a
    // worker that comes late leaves its item to the caller. Four items per thread, for balance, were
    // slower (Zen 5, two threads, median per call: batch 1 36.7 against 33.2 us, batch 16 130 against 123).
    const int64_t pairs = (layer.panels + 1) / 2;
    const int64_t items = std::min<int64_t>(pairs, pool_.size());
    auto job = [&](int64_t item, int) {
      const int64_t begin = 2 * (pairs * item / items), end = std::min(layer.panels, 2 * (pairs * (item + 1) / items));
      function(GemmTask{a, lda, n, &layer, begin, end, c, size_t(layer.out)});
    };
    pool_.run(items, job);
    a = c;
    lda = size_t(layer.out);
  }
}

void Network::dense_rows(int64_t row0, int64_t rows, const float *z, const int64_t *labels, float *out, int participant) {
  float *input = scratch_[size_t(participant)].data();  // (chunk, in) | (chunk, max_width) x 2
  float *buffers[2] = {input + kernel_.chunk_rows * input_width(), input + kernel_.chunk_rows * (input_width() + max_width_)};
  const float *a = input_rows(row0, rows, z, labels, input);
  size_t lda = size_t(input_width());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const PackedLayer &layer = layers_[l];
    float *c = l + 1 == layers_.size() ? out : buffers[l % 2];
    kernel_.gemm(GemmTask{a, lda, rows, &layer, 0, layer.panels, c, size_t(layer.out)});
    a = c;
    lda = size_t(layer.out);
  }
}

// Equal chunks of n, a multiple of the thread count (for balance), each at most `limit` rows.
int64_t Network::balanced_chunk(int64_t n, int64_t limit) const {
  const int64_t threads = pool_.size(), per_thread = (n + threads - 1) / threads;
  const int64_t chunks_per_thread = (per_thread + limit - 1) / limit;
  return (per_thread + chunks_per_thread - 1) / chunks_per_thread;
}

void Network::by_rows(int64_t n, const float *z, const int64_t *labels, float *out) {
  // As few chunks as fit kernel_.chunk_rows (each chunk streams all the weights once).
  const int64_t chunk_rows = balanced_chunk(n, kernel_.chunk_rows);
  auto job = [&](int64_t chunk, int participant) {
    const int64_t row0 = chunk * chunk_rows;
    dense_rows(row0, std::min(chunk_rows, n - row0), z, labels, out + row0 * layers_.back().out, participant);
  };
  pool_.run((n + chunk_rows - 1) / chunk_rows, job);
}

void Network::dense(int64_t n, const float *z, const int64_t *labels, float *out) {
  if (n < kColumnSplitBelow)
    by_columns(n, z, labels, out, n == 1 ? kernel_.gemv : kernel_.gemm);
  else
    by_rows(n, z, labels, out);
}

template <class Run>
void Network::steps(int64_t m, float *x, float *y, float *out, Run &&run) {
  bool channels_first = false;  // x's layout: only a convolution in scatter form (conv.h) writes (C, H, W)
  for (size_t s = 0; s < plan_.steps.size(); ++s) {
    const ImageStep &step = plan_.steps[s];
    const PackedConv &conv = convs_[s];
    const int64_t in_size = step.in_size(), out_size = step.out_size();
    if (channels_first) {  // back to (H, W, C) for the step after a scatter-form convolution
      run(m, [&](int64_t i, int) { to_channels_last(step.in_shape[0], in_size / step.in_shape[0], x + i * in_size, y + i * in_size); });
      std::swap(x, y);
      channels_first = false;
    }
    if (step.kind == ImageStep::kUpsample) {
      run(m, [&](int64_t i, int) { upsample(step, x + i * in_size, y + i * out_size); });
    } else {
      const int64_t items = conv.items();
      run(m * items, [&](int64_t item, int participant) {
        const int64_t i = item / items;
        run_conv_item(conv, kernel_, item % items, x + i * in_size, y + i * out_size, block_scratch_[size_t(participant)].data());
      });
      channels_first = conv.scattered;
    }
    std::swap(x, y);
  }
  const int64_t size = plan_.image_size();
  run(m, [&](int64_t i, int) {
    if (channels_first)
      std::memcpy(out + i * size, x + i * size, size_t(size) * sizeof(float));
    else
      to_channels_first(plan_.channels, size / plan_.channels, x + i * size, out + i * size);
  });
}

void Network::images_shared(int64_t n, const float *z, const int64_t *labels, float *out) {
  const int64_t latent = plan_.latent_dim;
  auto on_pool = [&](int64_t items, auto &&job) { pool_.run(items, job); };
  for (int64_t s0 = 0; s0 < n; s0 += slice_) {
    const int64_t m = std::min(slice_, n - s0);
    float *x = images_[0].data(), *y = images_[1].data();
    // (m, H, W, C): the last layer's outputs reordered. The matrix-vector kernel for a batch of one only,
    // not for a last slice of one: a sample's pixels must not depend on the thread count, and by samples
    // every sample goes through the GEMM kernel.
    static_assert(kSliceSamples < kColumnSplitBelow, "a slice's dense layers go by columns");
    by_columns(m, z + s0 * latent, labels ? labels + s0 : nullptr, x, n == 1 ? kernel_.gemv : kernel_.gemm);
    steps(m, x, y, out + s0 * plan_.image_size(), on_pool);
  }
}

void Network::images_by_samples(int64_t n, const float *z, const int64_t *labels, float *out) {
  const int64_t chunk = balanced_chunk(n, own_slice_);
  auto job = [&](int64_t c, int participant) {
    const int64_t row0 = c * chunk, rows = std::min(chunk, n - row0);
    float *x = own_images_[size_t(participant)].data(), *y = x + own_slice_ * largest_;
    auto alone = [participant](int64_t items, auto &&work) {
      for (int64_t item = 0; item < items; ++item) work(item, participant);
    };
    dense_rows(row0, rows, z, labels, x, participant);
    steps(rows, x, y, out + row0 * plan_.image_size(), alone);
  };
  pool_.run((n + chunk - 1) / chunk, job);
}

void Network::images(int64_t n, const float *z, const int64_t *labels, float *out) {
  if (own_slice_ && n >= kBySamplesFrom * pool_.size())
    images_by_samples(n, z, labels, out);
  else
    images_shared(n, z, labels, out);
}

void Network::generate(int64_t n, const float *z, const int64_t *labels, float *out) {
  if (n == 0) return;
  if (!plan_.steps.empty())
    images(n, z, labels, out);
  else
    dense(n, z, labels, out);
}

}  // namespace onnxgan
