// Reading the image ops of conv generators (Conv, ConvTranspose, Resize, Upsample) into ImageSteps
// (plan.h): every attribute checked against what the forward pass (conv.h) runs, anything else refused
// with the node named. plan.cpp walks the graph and hands these functions the constants they read.
#ifndef ONNXGAN_IMAGE_READER_H
#define ONNXGAN_IMAGE_READER_H

#include <string>
#include <vector>

#include "plan.h"

namespace onnxgan {

// Bounds that keep a hostile file's attributes from asking for huge work or memory: a kernel side, a
// stride, a dilation or an upsampling factor beyond these is refused, and so is a step whose image
// holds more than kMaxImageValues floats (16 MB per sample; a 1024 x 1024 x 3 image is 3 M).
struct ImageLimits {
  static constexpr int64_t kKernel = 32, kStride = 16, kDilation = 16, kScale = 16;
  static constexpr int64_t kMaxImageValues = int64_t(1) << 22;
};

// The node's refusal, "node '<name>' (<op>): <why>" (defined in plan.cpp).
[[noreturn]] void refuse_node(const onnx::Node &node, const std::string &why);

// Conv or ConvTranspose reading an image of dims `in` (C, H, W); weight_dims and weight as the file
// stores them ((out, in, kh, kw) for Conv, (in, out, kh, kw) for ConvTranspose); bias empty when absent.
ImageStep read_conv(const onnx::Node &node, const std::vector<int64_t> &in, const std::vector<int64_t> &weight_dims,
                    const std::vector<float> &weight, std::vector<float> bias);

// Resize or Upsample (mode nearest) reading an image of dims `in`, with its 4 scales (N, C, H, W).
ImageStep read_upsample(const onnx::Node &node, const std::vector<int64_t> &in, const std::vector<float> &scales);

}  // namespace onnxgan
#endif
