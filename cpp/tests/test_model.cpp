// The C ABI on the committed tiny model (tests/data/native_tiny.onnx): golden output, argument
// errors, and malformed files: the model truncated at every byte, random byte changes, and
// hand-made hostile protobufs (huge lengths and dims, bad varints). Each must give an error code and
// a message, never a crash (this test also runs under -fsanitize=address,undefined).
//   test_model MODEL.onnx GOLDEN.txt
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.h"
#include "onnxgan/sampler.h"

namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_file(const char *path) {
  std::ifstream file(path, std::ios::binary);
  CHECK(file.good(), std::string("cannot read ") + path);
  return Bytes(std::istreambuf_iterator<char>(file), {});
}

onnxgan_status open(const Bytes &bytes, onnxgan_model **model, int threads = 1) {
  const onnxgan_options options{threads, ONNXGAN_PRECISION_FLOAT32, ONNXGAN_KERNEL_AUTO};
  return onnxgan_open_memory(bytes.data(), bytes.size(), &options, model);
}

// Opens a buffer that must be refused with `expected` and a message containing `fragment`.
void expect_refused(const Bytes &bytes, onnxgan_status expected, const std::string &fragment) {
  onnxgan_model *model = nullptr;
  const onnxgan_status status = open(bytes, &model);
  CHECK(status == expected && model == nullptr,
        "expected status " + std::to_string(expected) + " (" + fragment + "), got " + std::to_string(status) + ": " + onnxgan_last_error());
  CHECK(std::string(onnxgan_last_error()).find(fragment) != std::string::npos, std::string("message: ") + onnxgan_last_error());
}

// A tiny protobuf encoder for the hostile inputs.
void varint(Bytes &out, uint64_t value) {
  do {
    out.push_back(uint8_t((value & 0x7f) | (value > 0x7f ? 0x80 : 0)));
    value >>= 7;
  } while (value);
}
Bytes field(uint32_t number, const Bytes &payload) {
  Bytes out;
  varint(out, uint64_t(number) << 3 | 2);
  varint(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}
Bytes field(uint32_t number, const std::string &text) { return field(number, Bytes(text.begin(), text.end())); }
Bytes integer(uint32_t number, uint64_t value) {
  Bytes out;
  varint(out, uint64_t(number) << 3);
  varint(out, value);
  return out;
}
Bytes join(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes &part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// A float32 ValueInfoProto: name and dims (0 for the symbolic batch N).
Bytes float_value(const std::string &name, std::initializer_list<uint64_t> dims) {
  Bytes shape;
  for (uint64_t d : dims) shape = join({shape, field(1, d ? integer(1, d) : field(2, "N"))});
  return join({field(1, name), field(2, field(1, join({integer(1, 1), field(2, shape)})))});
}

// ModelProto: opset 17, graph: z float (N, 4) -> Gemm(z, w) -> image (transB=0: w is (4, out)), w with
// the given dims and raw bytes; the contract's metadata for images (1, 1, 3).
Bytes model_with_weight(const std::vector<uint64_t> &dims, size_t raw_bytes) {
  Bytes tensor;
  for (uint64_t d : dims) tensor = join({tensor, integer(1, d)});
  tensor = join({tensor, integer(2, 1), field(8, "w"), field(9, Bytes(raw_bytes, 0))});
  const Bytes node = join({field(1, "z"), field(1, "w"), field(2, "image"), field(3, "gemm"), field(4, "Gemm")});
  const Bytes graph = join({field(1, node), field(5, tensor), field(11, float_value("z", {0, 4})),
                            field(12, float_value("image", {0, 1, 1, 3}))});
  Bytes metadata;
  for (const auto &[key, value] : std::initializer_list<std::pair<const char *, const char *>>{
           {"onnxgan_format", "1"}, {"model", "\"hand\""}, {"latent_dim", "4"}, {"image_shape", "[1, 1, 3]"},
           {"num_classes", "0"}, {"class_names", "[]"}, {"training_step", "0"}, {"package_version", "\"0\""},
           {"weights_dtype", "\"float32\""}, {"value_range", "[-1, 1]"}, {"latent_rng", "\"splitmix64-boxmuller-v1\""}})
    metadata = join({metadata, field(14, join({field(1, key), field(2, value)}))});
  return join({integer(1, 8), field(7, graph), field(8, integer(2, 17)), metadata});
}

void golden(const Bytes &file, const char *golden_path) {
  onnxgan_model *model = nullptr;
  CHECK(open(file, &model) == ONNXGAN_OK, onnxgan_last_error());
  onnxgan_info info;
  CHECK(onnxgan_get_info(model, &info) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(info.latent_dim == 6 && info.channels == 1 && info.height == 3 && info.width == 4 && info.image_size == 12 &&
            info.num_classes == 3 && info.value_min == -1.0f && info.value_max == 1.0f && info.threads == 1,
        "info of native_tiny.onnx");
  std::ifstream text(golden_path);
  std::vector<float> expected{std::istream_iterator<float>(text), {}};
  CHECK(expected.size() == 36, "golden file holds (3, 1, 3, 4) floats");
  std::vector<float> images(36);
  CHECK(onnxgan_sample(model, 3, 7, 0.0, nullptr, ONNXGAN_OUTPUT_FLOAT32, images.data(), 36 * 4) == ONNXGAN_OK, onnxgan_last_error());
  for (size_t i = 0; i < 36; ++i) CHECK(std::fabs(images[i] - expected[i]) <= 1e-5f, "golden element " + std::to_string(i));
  std::vector<uint8_t> pixels(36);
  CHECK(onnxgan_sample(model, 3, 7, 0.0, nullptr, ONNXGAN_OUTPUT_UINT8, pixels.data(), 36) == ONNXGAN_OK, onnxgan_last_error());
  for (size_t i = 0; i < 36; ++i)  // C == 1: (N, H, W, C) and (N, C, H, W) coincide
    CHECK(pixels[i] == uint8_t(std::nearbyint((images[i] + 1.0f) * 127.5f)), "uint8 pixel " + std::to_string(i));
  std::vector<uint8_t> mapped(36);
  CHECK(onnxgan_to_uint8(model, 3, images.data(), 36 * 4, mapped.data(), 36) == ONNXGAN_OK && mapped == pixels,
        "to_uint8(sample float32) == sample uint8");
  CHECK(onnxgan_to_uint8(model, 3, images.data(), 36 * 4, mapped.data(), 35) == ONNXGAN_ERROR_ARGUMENT, "to_uint8 out too small");
  // Explicit labels equal to the default cycle give the same images; z through generate() too.
  const int64_t labels[3] = {0, 1, 2};
  std::vector<float> z(18), again(36);
  CHECK(onnxgan_latent(3, 6, 7, 0.0, z.data(), z.size() * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(onnxgan_generate(model, 3, z.data(), labels, again.data(), 36 * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(again == images, "generate(latent) == sample");
  // Truncation: sample(truncation) == generate(latent(truncation)), and it changes the images.
  std::vector<float> truncated(36);
  CHECK(onnxgan_sample(model, 3, 7, 0.5, nullptr, ONNXGAN_OUTPUT_FLOAT32, truncated.data(), 36 * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(onnxgan_latent(3, 6, 7, 0.5, z.data(), z.size() * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(onnxgan_generate(model, 3, z.data(), labels, again.data(), 36 * 4) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(again == truncated && truncated != images, "sample(truncation 0.5) == generate(latent(truncation 0.5)) != sample");
  CHECK(onnxgan_sample(model, 3, 7, 0.01, nullptr, ONNXGAN_OUTPUT_FLOAT32, again.data(), 36 * 4) == ONNXGAN_ERROR_ARGUMENT,
        "truncation 0.01 must be refused");
  // Every metadata key, in file order, as its JSON text; an absent key is NULL.
  CHECK(info.metadata_count == 11, "native_tiny.onnx has 11 metadata entries");
  const char *key = nullptr, *value = nullptr;
  CHECK(onnxgan_metadata_entry(model, 6, &key, &value) == ONNXGAN_OK && std::string(key) == "class_names" &&
            std::string(value) == "[\"a\", \"b\", \"c\"]", "metadata entry 6");
  CHECK(onnxgan_metadata(model, "weights_dtype", &value) == ONNXGAN_OK && std::string(value) == "\"float16\"", "weights_dtype");
  CHECK(onnxgan_metadata(model, "no such key", &value) == ONNXGAN_OK && value == nullptr, "absent key");
  CHECK(onnxgan_metadata_entry(model, 11, &key, &value) == ONNXGAN_ERROR_ARGUMENT, "entry 11 of 11");
  // Argument errors.
  const int64_t bad_labels[3] = {0, 3, 1};
  CHECK(onnxgan_generate(model, 3, z.data(), bad_labels, again.data(), 36 * 4) == ONNXGAN_ERROR_ARGUMENT, "label 3 of 3 classes");
  CHECK(std::string(onnxgan_last_error()).find("label 3 at row 1") != std::string::npos, onnxgan_last_error());
  CHECK(onnxgan_generate(model, 3, z.data(), nullptr, again.data(), 36 * 4) == ONNXGAN_ERROR_ARGUMENT, "missing labels");
  CHECK(onnxgan_generate(model, 3, z.data(), labels, again.data(), 35 * 4) == ONNXGAN_ERROR_ARGUMENT, "small output");
  CHECK(onnxgan_generate(model, 3, nullptr, labels, again.data(), 36 * 4) == ONNXGAN_ERROR_ARGUMENT, "NULL z");
  CHECK(onnxgan_generate(model, 0, nullptr, nullptr, nullptr, 0) == ONNXGAN_OK, "n = 0 is fine");
  CHECK(onnxgan_sample(model, 3, 7, 0.0, nullptr, 9, pixels.data(), 36) == ONNXGAN_ERROR_ARGUMENT, "unknown format");
  CHECK(onnxgan_generate(nullptr, 1, z.data(), labels, again.data(), 36 * 4) == ONNXGAN_ERROR_ARGUMENT, "NULL model");
  onnxgan_close(model);
  onnxgan_close(nullptr);
  // The default precision follows the file: its weights are fp16, so they stay fp16 in memory (except on
  // the portable kernel), and the images are bit for bit those of fp32 storage (the same values).
  CHECK(onnxgan_open_memory(file.data(), file.size(), nullptr, &model) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(onnxgan_get_info(model, &info) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(info.precision == (info.kernel == ONNXGAN_KERNEL_PORTABLE ? ONNXGAN_PRECISION_FLOAT32 : ONNXGAN_PRECISION_FLOAT16),
        "default precision of an fp16 file: " + std::to_string(info.precision) + " on kernel " + std::to_string(info.kernel));
  CHECK(onnxgan_sample(model, 3, 7, 0.0, nullptr, ONNXGAN_OUTPUT_FLOAT32, again.data(), 36 * 4) == ONNXGAN_OK && again == images,
        "default precision: the images of fp32 storage");
  onnxgan_close(model);
}

// Every prefix must be refused: one that ends in the graph cuts it short, one that ends in the
// metadata lacks a key the contract requires (each key of the file is written once).
void truncations(const Bytes &file) {
  for (size_t size = 0; size < file.size(); ++size) {
    const Bytes prefix(file.begin(), file.begin() + long(size));
    onnxgan_model *model = nullptr;
    const onnxgan_status status = open(prefix, &model);
    CHECK((status == ONNXGAN_ERROR_FORMAT || status == ONNXGAN_ERROR_UNSUPPORTED) && model == nullptr,
          "prefix of " + std::to_string(size) + " bytes: status " + std::to_string(status));
    CHECK(std::strlen(onnxgan_last_error()) > 0, "an error has a message");
  }
}

// Random changes of 1 to 4 bytes: whatever loads must run; the rest must fail cleanly.
void mutations(const Bytes &file, int count) {
  uint64_t state = 88172645463325252ull;
  const auto next = [&] {  // xorshift64
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  int loaded = 0;
  for (int i = 0; i < count; ++i) {
    Bytes changed = file;
    for (uint64_t k = 0, changes = 1 + next() % 4; k < changes; ++k) changed[next() % changed.size()] = uint8_t(next());
    onnxgan_model *model = nullptr;
    const onnxgan_status status = open(changed, &model, 2);
    if (status != ONNXGAN_OK) {
      CHECK(status == ONNXGAN_ERROR_FORMAT || status == ONNXGAN_ERROR_UNSUPPORTED, "mutation status " + std::to_string(status) + ": " + onnxgan_last_error());
      continue;
    }
    ++loaded;
    onnxgan_info info;
    CHECK(onnxgan_get_info(model, &info) == ONNXGAN_OK, onnxgan_last_error());
    std::vector<float> out(size_t(40 * info.image_size));
    // A changed weight may be NaN or Inf: then the output check refuses the result (ONNXGAN_ERROR_NONFINITE).
    const onnxgan_status sampled = onnxgan_sample(model, 40, 1, 0.0, nullptr, ONNXGAN_OUTPUT_FLOAT32, out.data(), out.size() * 4);
    CHECK(sampled == ONNXGAN_OK || sampled == ONNXGAN_ERROR_NONFINITE, onnxgan_last_error());
    onnxgan_close(model);
  }
  std::printf("test_model: %d of %d mutated files still loaded (changes in values) and ran\n", loaded, count);
}

void hostile() {
  expect_refused({}, ONNXGAN_ERROR_FORMAT, "no graph");
  expect_refused({0x3a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ONNXGAN_ERROR_FORMAT, "runs past the end");
  expect_refused({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ONNXGAN_ERROR_FORMAT, "varint");
  expect_refused({0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ONNXGAN_ERROR_FORMAT, "overflows");
  expect_refused({0x0b, 0x00}, ONNXGAN_ERROR_FORMAT, "wire type 3");
  expect_refused({0x00, 0x00}, ONNXGAN_ERROR_FORMAT, "field number");
  expect_refused(field(7, Bytes{0x0a, 0x05, 0x22}), ONNXGAN_ERROR_FORMAT, "runs past the end");  // node cut short
  expect_refused(model_with_weight({1u << 30, 1u << 30, 1u << 30}, 16), ONNXGAN_ERROR_FORMAT, "absurd size");
  expect_refused(model_with_weight({1000000, 4}, 16), ONNXGAN_ERROR_FORMAT, "declares 4000000 elements");
  expect_refused(model_with_weight({4, 3}, 48 + 4), ONNXGAN_ERROR_FORMAT, "raw_data holds 52 bytes");
  expect_refused(model_with_weight({3, 5}, 60), ONNXGAN_ERROR_UNSUPPORTED, "has dims (3, 5), expected (4, out)");
  {  // one field repeated past a cap: refused before it can cost memory
    Bytes dims;
    for (int i = 0; i < 9; ++i) dims = join({dims, integer(1, 1)});
    expect_refused(field(7, field(5, dims)), ONNXGAN_ERROR_UNSUPPORTED, "too many tensor dims");
  }
  onnxgan_model *model = nullptr;
  CHECK(open(model_with_weight({4, 3}, 48), &model) == ONNXGAN_OK, onnxgan_last_error());  // the control
  onnxgan_close(model);
  CHECK(onnxgan_open_file("/nonexistent/model.onnx", nullptr, &model) == ONNXGAN_ERROR_IO, "missing file");
  CHECK(std::string(onnxgan_last_error()).find("/nonexistent/model.onnx") != std::string::npos, onnxgan_last_error());
  CHECK(onnxgan_open_memory(nullptr, 5, nullptr, &model) == ONNXGAN_ERROR_ARGUMENT, "NULL data");
  const onnxgan_options bad_threads{-1, 0, 0}, bad_precision{0, 7, 0}, bad_kernel{0, 0, 9};
  const Bytes good = model_with_weight({4, 3}, 48);
  CHECK(onnxgan_open_memory(good.data(), good.size(), &bad_threads, &model) == ONNXGAN_ERROR_ARGUMENT, "threads -1");
  CHECK(onnxgan_open_memory(good.data(), good.size(), &bad_precision, &model) == ONNXGAN_ERROR_ARGUMENT, "precision 7");
  CHECK(onnxgan_open_memory(good.data(), good.size(), &bad_kernel, &model) == ONNXGAN_ERROR_ARGUMENT, "kernel 9");
}

}  // namespace

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_model MODEL.onnx GOLDEN.txt");
  const Bytes file = read_file(argv[1]);
  golden(file, argv[2]);
  hostile();
  truncations(file);
  mutations(file, 3000);
  std::puts("test_model: ok");
  return 0;
}
