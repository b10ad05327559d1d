// The C ABI on the committed conv generator (tests/data/native_conv.onnx: Resize, a gather-form Conv,
// scatter-form ConvTranspose and Conv with strides, dilation and output padding, a Resize after a
// scatter-form step; RGB, conditional): onnxruntime's golden images on every kernel this CPU has, with
// 1 and 3 threads (bit-identical across thread counts), and batch 1 equal to batch 3's first image
// within float rounding. Also runs under -fsanitize=address,undefined.
//   test_conv_model MODEL.onnx GOLDEN.txt
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.h"
#include "onnxgan/sampler.h"

namespace {

constexpr int64_t kImages = 3, kImageSize = 3 * 7 * 16;  // (3, 3, 7, 16)

std::vector<float> sample(const std::vector<uint8_t> &file, onnxgan_kernel kernel, int threads, int64_t n) {
  const onnxgan_options options{threads, ONNXGAN_PRECISION_FLOAT32, kernel};
  onnxgan_model *model = nullptr;
  CHECK(onnxgan_open_memory(file.data(), file.size(), &options, &model) == ONNXGAN_OK, onnxgan_last_error());
  onnxgan_info info;
  CHECK(onnxgan_get_info(model, &info) == ONNXGAN_OK, onnxgan_last_error());
  CHECK(info.channels == 3 && info.height == 7 && info.width == 16 && info.image_size == kImageSize && info.num_classes == 3,
        "info of native_conv.onnx");
  std::vector<float> images(size_t(n * kImageSize));
  CHECK(onnxgan_sample(model, n, 7, 0.0, nullptr, ONNXGAN_OUTPUT_FLOAT32, images.data(), images.size() * 4) == ONNXGAN_OK,
        onnxgan_last_error());
  onnxgan_close(model);
  return images;
}

}  // namespace

int main(int argc, char **argv) {
  CHECK(argc == 3, "usage: test_conv_model MODEL.onnx GOLDEN.txt");
  std::ifstream model_file(argv[1], std::ios::binary), golden_file(argv[2]);
  CHECK(model_file.good() && golden_file.good(), "cannot read the model or its golden file");
  const std::vector<uint8_t> file{std::istreambuf_iterator<char>(model_file), {}};
  const std::vector<float> golden{std::istream_iterator<float>(golden_file), {}};
  CHECK(golden.size() == size_t(kImages * kImageSize), "golden file holds (3, 3, 7, 16) floats");
  int kernels = 0;
  for (onnxgan_kernel kernel : {ONNXGAN_KERNEL_PORTABLE, ONNXGAN_KERNEL_AVX2, ONNXGAN_KERNEL_AVX512}) {
    const onnxgan_options probe{1, ONNXGAN_PRECISION_FLOAT32, kernel};
    onnxgan_model *model = nullptr;
    if (onnxgan_open_memory(file.data(), file.size(), &probe, &model) != ONNXGAN_OK) continue;  // not on this CPU
    onnxgan_close(model);
    ++kernels;
    const std::vector<float> one = sample(file, kernel, 1, kImages), three = sample(file, kernel, 3, kImages);
    CHECK(one == three, "kernel " + std::to_string(kernel) + ": 1 and 3 threads differ");
    for (size_t i = 0; i < golden.size(); ++i)
      CHECK(std::fabs(one[i] - golden[i]) <= 1e-5f, "kernel " + std::to_string(kernel) + ", element " + std::to_string(i) +
                                                        ": " + std::to_string(one[i]) + " against " + std::to_string(golden[i]));
    const std::vector<float> first = sample(file, kernel, 2, 1);  // batch 1: the dense layer's matrix-vector path
    for (size_t i = 0; i < first.size(); ++i) CHECK(std::fabs(first[i] - one[i]) <= 1e-5f, "batch 1, element " + std::to_string(i));
  }
  CHECK(kernels >= 1, "the portable kernel always opens");
  std::printf("test_conv_model: ok (%d kernels)\n", kernels);
  return 0;
}
