// The C ABI (include/onnxgan/sampler.h): argument checks, error codes and messages. Every entry point
// runs its body inside guarded(), so no C++ exception ever crosses the boundary.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "latent.h"
#include "network.h"
#include "onnx_proto.h"

struct onnxgan_model {
  std::mutex mutex;  // one call at a time: the network owns one thread pool and its scratch
  std::unique_ptr<onnxgan::Network> network;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props (key, JSON text), file order
  // Every weight finite. A NaN weight must be caught here: the kernels' tanh clamps its input, which
  // turns NaN into -1 (black images), so the output check alone would not see it.
  bool finite_weights = true;
};

namespace onnxgan {
namespace {

thread_local char last_error[1024] = "";

void set_error(const char *message) { std::snprintf(last_error, sizeof last_error, "%s", message); }

template <class Body>
onnxgan_status guarded(Body body) {
  try {
    body();
    return ONNXGAN_OK;
  } catch (const Error &e) {
    set_error(e.what());
    return e.status;
  } catch (const std::bad_alloc &) {
    set_error("out of memory");
    return ONNXGAN_ERROR_MEMORY;
  } catch (const std::exception &e) {
    set_error((std::string("internal error: ") + e.what()).c_str());
    return ONNXGAN_ERROR_INTERNAL;
  } catch (...) {
    set_error("internal error");
    return ONNXGAN_ERROR_INTERNAL;
  }
}

constexpr size_t kMaxFileBytes = size_t(1) << 31;  // protobuf's own limit for one message

onnxgan_model *open(pb::Bytes bytes, const onnxgan_options *options) {
  const onnxgan_options defaults{0, ONNXGAN_PRECISION_AUTO, ONNXGAN_KERNEL_AUTO};
  const onnxgan_options &o = options ? *options : defaults;
  if (o.precision != ONNXGAN_PRECISION_AUTO && o.precision != ONNXGAN_PRECISION_FLOAT32 &&
      o.precision != ONNXGAN_PRECISION_FLOAT16)
    fail_argument("precision must be 0 (auto), 1 (float32) or 2 (float16), got " + std::to_string(o.precision));
  const Kernel &kernel = select_kernel(o.kernel);
  const int threads = resolve_threads(o.threads);
  onnx::Model parsed = onnx::parse_model(bytes);
  Plan plan = build_plan(parsed);
  // AUTO keeps fp16 weights fp16: exact (the same values, so the same images) and half the bytes. The
  // portable kernel widens each fp16 weight in scalar code, which costs more than the bytes save.
  const bool half = o.precision == ONNXGAN_PRECISION_FLOAT16 ||
                    (o.precision == ONNXGAN_PRECISION_AUTO && plan.float16_weights && kernel.id != ONNXGAN_KERNEL_PORTABLE);
  auto model = std::make_unique<onnxgan_model>();
  model->finite_weights = all_finite(plan);
  model->network = std::make_unique<Network>(std::move(plan), kernel, half, threads);
  model->metadata = std::move(parsed.metadata);
  return model.release();
}

void require(bool condition, const char *message) {
  if (!condition) fail_argument(message);
}

// count * element_size bytes, or an argument error if that overflows.
size_t checked_bytes(int64_t rows, int64_t width, size_t element_size) {
  require(rows >= 0, "n must be >= 0");
  if (width > 0 && uint64_t(rows) > std::numeric_limits<size_t>::max() / element_size / uint64_t(width))
    fail_argument("n is too large");
  return size_t(rows) * size_t(width) * element_size;
}

void check_labels(const Plan &plan, int64_t n, const int64_t *labels) {
  if (plan.num_classes == 0) {
    require(labels == nullptr, "this model is unconditional: pass no labels");
    return;
  }
  require(labels != nullptr || n == 0, "this model is conditional: pass labels (n,) in 0..num_classes-1");
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= plan.num_classes)
      fail_argument("label " + std::to_string(labels[i]) + " at row " + std::to_string(i) + " is outside 0.." +
                    std::to_string(plan.num_classes - 1));
}

// The row of values (rows, width) that holds the first NaN or Inf, or -1 when all are finite.
int64_t first_nonfinite_row(const float *values, int64_t rows, int64_t width) {
  for (int64_t i = 0; i < rows * width; ++i)
    if (!std::isfinite(values[i])) return i / width;
  return -1;
}

void generate(onnxgan_model *model, int64_t n, const float *z, const int64_t *labels, float *out, size_t out_size) {
  require(model != nullptr, "model is NULL");
  const Plan &plan = model->network->plan();
  checked_bytes(n, plan.latent_dim, sizeof(float));
  require(out_size >= checked_bytes(n, plan.image_size(), sizeof(float)), "out is smaller than n * image_size floats");
  require(n == 0 || (z != nullptr && out != nullptr), "z and out must not be NULL");
  check_labels(plan, n, labels);
  // A NaN z would come out of tanh's clamp as a black image with an OK status: refused as onnxruntime's is.
  const int64_t bad_z = first_nonfinite_row(z, n, plan.latent_dim);
  if (bad_z >= 0) fail_argument("z holds NaN or Inf (row " + std::to_string(bad_z) + "); z must be finite");
  if (!model->finite_weights)
    throw Error(ONNXGAN_ERROR_NONFINITE, "the model produced NaN/Inf values (its weights hold NaN/Inf); its "
                                         "weights are broken");
  std::lock_guard<std::mutex> lock(model->mutex);
  model->network->generate(n, z, labels, out);
  // Garbage is never a success: a NaN or Inf would become a black or white pixel without a word.
  const int64_t width = plan.image_size();
  for (int64_t i = 0; i < n * width; ++i)
    if (!std::isfinite(out[i]))
      throw Error(ONNXGAN_ERROR_NONFINITE, "the model produced NaN/Inf values (image " + std::to_string(i / width) +
                                               "); its weights are probably broken");
}

// z float (n, latent_dim) of seed, truncated as runtime/latent.py specifies when truncation != 0.
void latent(int64_t n, int64_t latent_dim, uint64_t seed, double truncation, float *z) {
  const size_t count = checked_bytes(n, latent_dim, sizeof(float)) / sizeof(float);
  standard_normal(seed, count, z);
  if (truncation == 0.0) return;
  if (!(truncation >= kMinTruncation))  // NaN included
    fail_argument("truncation must be 0 (none) or >= 0.1, got " + std::to_string(truncation));
  require(uint64_t(count) <= kAttemptStride, "truncation covers at most 2**40 latent numbers (n * latent_dim)");
  truncate(seed, count, float(truncation), z);
}

// float (n, C, H, W) in [low, high] -> uint8 (n, H, W, C), as onnxgan.images.to_uint8 does for [-1, 1].
void to_uint8(const Plan &plan, int64_t n, const float *images, uint8_t *pixels) {
  const float low = plan.value_min;
  const float scale = float(255.0 / (double(plan.value_max) - double(plan.value_min)));
  const int64_t C = plan.channels, HW = plan.height * plan.width;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) {
        const float v = std::nearbyint((images[(i * C + c) * HW + p] - low) * scale);  // half to even
        pixels[(i * HW + p) * C + c] = uint8_t(v >= 255.0f ? 255.0f : v >= 0.0f ? v : 0.0f);  // NaN -> 0
      }
}

}  // namespace
}  // namespace onnxgan

using namespace onnxgan;

extern "C" {

const char *onnxgan_last_error(void) { return last_error; }

onnxgan_status onnxgan_open_file(const char *path, const onnxgan_options *options, onnxgan_model **model) {
  return guarded([&] {
    require(path != nullptr && model != nullptr, "path and model must not be NULL");
    *model = nullptr;
    // A named pipe or a device would block the open or never end: only a regular file is read (as the
    // Python reader, runtime/sampler.py, refuses them too).
    struct stat status{};
    if (::stat(path, &status) == 0 && !S_ISREG(status.st_mode))
      throw Error(ONNXGAN_ERROR_IO, std::string("'") + path + "' is not a regular file (a folder, pipe or device)");
    std::ifstream file(path, std::ios::binary | std::ios::ate);
    if (!file) throw Error(ONNXGAN_ERROR_IO, std::string("cannot open '") + path + "': " + std::strerror(errno));
    const std::streamoff size = file.tellg();
    if (size < 0 || uint64_t(size) > kMaxFileBytes)
      throw Error(ONNXGAN_ERROR_IO, std::string("'") + path + "' is not a readable file under 2 GiB");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    file.seekg(0);
    if (!file.read(reinterpret_cast<char *>(bytes.data()), size))
      throw Error(ONNXGAN_ERROR_IO, std::string("cannot read '") + path + "'");
    try {
      *model = open(pb::Bytes{bytes.data(), bytes.size()}, options);
    } catch (const Error &e) {
      throw Error(e.status, std::string(path) + ": " + e.what());
    }
  });
}

onnxgan_status onnxgan_open_memory(const void *data, size_t size, const onnxgan_options *options, onnxgan_model **model) {
  return guarded([&] {
    require(model != nullptr && (data != nullptr || size == 0), "data and model must not be NULL");
    *model = nullptr;
    if (size > kMaxFileBytes) fail_format("the buffer is over 2 GiB, protobuf's limit");
    *model = open(pb::Bytes{static_cast<const uint8_t *>(data), size}, options);
  });
}

onnxgan_status onnxgan_get_info(const onnxgan_model *model, onnxgan_info *info) {
  return guarded([&] {
    require(model != nullptr && info != nullptr, "model and info must not be NULL");
    const Network &network = *model->network;
    const Plan &plan = network.plan();
    *info = onnxgan_info{};
    info->latent_dim = plan.latent_dim;
    info->channels = plan.channels;
    info->height = plan.height;
    info->width = plan.width;
    info->image_size = plan.image_size();
    info->num_classes = plan.num_classes;
    info->value_min = plan.value_min;
    info->value_max = plan.value_max;
    info->threads = network.threads();
    info->precision = network.half() ? ONNXGAN_PRECISION_FLOAT16 : ONNXGAN_PRECISION_FLOAT32;
    info->kernel = network.kernel().id;
    info->metadata_count = int64_t(model->metadata.size());
  });
}

onnxgan_status onnxgan_metadata_entry(const onnxgan_model *model, int64_t index, const char **key, const char **value) {
  return guarded([&] {
    require(model != nullptr && key != nullptr && value != nullptr, "model, key and value must not be NULL");
    require(index >= 0 && uint64_t(index) < model->metadata.size(), "index is outside 0..metadata_count-1");
    *key = model->metadata[size_t(index)].first.c_str();
    *value = model->metadata[size_t(index)].second.c_str();
  });
}

onnxgan_status onnxgan_metadata(const onnxgan_model *model, const char *key, const char **value) {
  return guarded([&] {
    require(model != nullptr && key != nullptr && value != nullptr, "model, key and value must not be NULL");
    *value = nullptr;
    for (const auto &[name, text] : model->metadata)
      if (name == key) *value = text.c_str();  // the last of repeated keys, as onnx.load's dict keeps it
  });
}

onnxgan_status onnxgan_generate(onnxgan_model *model, int64_t n, const float *z, const int64_t *labels, float *out,
                                size_t out_size) {
  return guarded([&] { generate(model, n, z, labels, out, out_size); });
}

onnxgan_status onnxgan_sample(onnxgan_model *model, int64_t n, uint64_t seed, double truncation, const int64_t *labels,
                              int format, void *out, size_t out_size) {
  return guarded([&] {
    require(model != nullptr, "model is NULL");
    require(format == ONNXGAN_OUTPUT_FLOAT32 || format == ONNXGAN_OUTPUT_UINT8, "format must be 0 (float32) or 1 (uint8)");
    const Plan &plan = model->network->plan();
    const int64_t size = plan.image_size();
    const size_t needed = checked_bytes(n, size, format == ONNXGAN_OUTPUT_UINT8 ? 1 : sizeof(float));
    require(out_size >= needed && (n == 0 || out != nullptr), "out is smaller than n images");
    std::vector<float> z(checked_bytes(n, plan.latent_dim, sizeof(float)) / sizeof(float));  // (n, latent_dim)
    latent(n, plan.latent_dim, seed, truncation, z.data());
    std::vector<int64_t> cycled;
    if (plan.num_classes > 0 && labels == nullptr) {  // row i gets class i % num_classes
      cycled.resize(size_t(n));
      for (int64_t i = 0; i < n; ++i) cycled[size_t(i)] = i % plan.num_classes;
      labels = cycled.data();
    }
    if (format == ONNXGAN_OUTPUT_FLOAT32) {
      generate(model, n, z.data(), labels, static_cast<float *>(out), out_size);
      return;
    }
    std::vector<float> images(size_t(n) * size_t(size));  // (n, C, H, W)
    generate(model, n, z.data(), labels, images.data(), images.size() * sizeof(float));
    to_uint8(plan, n, images.data(), static_cast<uint8_t *>(out));
  });
}

onnxgan_status onnxgan_to_uint8(const onnxgan_model *model, int64_t n, const float *images, size_t images_size,
                                uint8_t *out, size_t out_size) {
  return guarded([&] {
    require(model != nullptr, "model is NULL");
    const Plan &plan = model->network->plan();
    const int64_t size = plan.image_size();
    require(images_size >= checked_bytes(n, size, sizeof(float)), "images is smaller than n * image_size floats");
    require(out_size >= checked_bytes(n, size, 1), "out is smaller than n * image_size bytes");
    require(n == 0 || (images != nullptr && out != nullptr), "images and out must not be NULL");
    const int64_t bad = first_nonfinite_row(images, n, size);
    if (bad >= 0)
      throw Error(ONNXGAN_ERROR_NONFINITE, "images hold NaN or Inf (image " + std::to_string(bad) +
                                               "); they cannot become pixels");
    to_uint8(plan, n, images, out);
  });
}

onnxgan_status onnxgan_latent(int64_t n, int64_t latent_dim, uint64_t seed, double truncation, float *out,
                              size_t out_size) {
  return guarded([&] {
    require(latent_dim > 0, "latent_dim must be > 0");
    const size_t bytes = checked_bytes(n, latent_dim, sizeof(float));
    require(out_size >= bytes && (n == 0 || out != nullptr), "out is smaller than n * latent_dim floats");
    latent(n, latent_dim, seed, truncation, out);
  });
}

void onnxgan_close(onnxgan_model *model) { delete model; }

}  // extern "C"
