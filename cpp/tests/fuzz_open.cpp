// libFuzzer target for the ONNX reader and validator through the C ABI: any input must either load
// (and then sample) or fail with an error code; crashes, leaks and UB are findings (ASan/UBSan on).
//   cmake -S cpp -B build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DONNXGAN_FUZZ=ON
//   build/fuzz/tests/fuzz_open -max_total_time=60 tests/data   (the committed models as seeds)
#include <cstdint>
#include <vector>

#include "onnxgan/sampler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const onnxgan_options options{1, ONNXGAN_PRECISION_FLOAT32, ONNXGAN_KERNEL_AUTO};
  onnxgan_model *model = nullptr;
  if (onnxgan_open_memory(data, size, &options, &model) != ONNXGAN_OK) return 0;
  onnxgan_info info;
  if (onnxgan_get_info(model, &info) == ONNXGAN_OK && info.image_size <= (1 << 20)) {
    std::vector<float> images(size_t(2 * info.image_size));
    onnxgan_sample(model, 2, 0, 0.0, nullptr, ONNXGAN_OUTPUT_FLOAT32, images.data(), images.size() * sizeof(float));
  }
  onnxgan_close(model);
  return 0;
}
