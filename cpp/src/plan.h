// The validated, backend-neutral description of a generator: dense layers, then (conv generators)
// steps on images. What plan.cpp (with image_reader.cpp) extracts from an ONNX graph and what the
// forward pass (network.h, conv.h) packs and runs.
#ifndef ONNXGAN_PLAN_H
#define ONNXGAN_PLAN_H

#include <cstdint>
#include <vector>

#include "onnx_proto.h"

namespace onnxgan {

enum class Activation { kNone, kRelu, kLeakyRelu, kTanh, kSigmoid };

// y = act(x W^T + b): x (N, in), weight (out, in) row-major, bias (out,).
struct Layer {
  int64_t in = 0, out = 0;
  std::vector<float> weight;
  std::vector<float> bias;
  Activation activation = Activation::kNone;
  float alpha = 0.0f;  // LeakyRelu slope
};

// A Conv or ConvTranspose on one image, each axis (h, w) described alike. ONNX semantics:
//   Conv:          out = (in + pad_begin + pad_end - dilation * (kernel - 1) - 1) / stride + 1,
//                  input i = o * stride - pad_begin + k * dilation;
//   ConvTranspose: out = stride * (in - 1) + output_padding + dilation * (kernel - 1) + 1 - pad_begin - pad_end,
//                  output o = i * stride - pad_begin + k * dilation.
struct Conv {
  bool transposed = false;
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, dilation[2] = {1, 1}, pad_begin[2] = {0, 0};
  std::vector<float> weight;  // (out_channels, in_channels, kernel_h, kernel_w) for both kinds
  std::vector<float> bias;    // (out_channels,)
};

// One step after the dense layers, on images (C, H, W): a convolution and the activation fused after
// it, or a nearest-neighbour upsampling by whole factors (Resize / Upsample).
struct ImageStep {
  enum Kind { kConv, kUpsample } kind = kConv;
  int64_t in_shape[3] = {0, 0, 0}, out_shape[3] = {0, 0, 0};  // (C, H, W)
  Conv conv;                                                 // kConv
  int64_t scale[2] = {1, 1};                                 // kUpsample: out side = scale * in side
  Activation activation = Activation::kNone;
  float alpha = 0.0f;  // LeakyRelu slope
  int64_t in_size() const { return in_shape[0] * in_shape[1] * in_shape[2]; }
  int64_t out_size() const { return out_shape[0] * out_shape[1] * out_shape[2]; }
};

struct Plan {
  int64_t latent_dim = 0;
  // Conditional models: the first layer's input is concat(z, embedding[label]) (or the reverse).
  int64_t num_classes = 0, embed_dim = 0;
  bool embedding_first = false;
  std::vector<float> embedding;  // (num_classes, embed_dim)
  std::vector<Layer> layers;
  // Conv generators: the last layer's output read as (C, H, W), then these steps; empty for MLPs.
  std::vector<ImageStep> steps;
  int64_t channels = 1, height = 1, width = 1;  // one image: layers.back().out or steps.back().out_size() values
  int64_t image_size() const { return channels * height * width; }
  float value_min = -1.0f, value_max = 1.0f;
  bool float16_weights = false;  // every layer's weights are fp16 in the file (unscaled): fp16 storage is exact
};

// Checks that the graph is a generator this library runs and extracts it; throws onnxgan::Error
// (unsupported, naming the op or construct, or format) otherwise.
Plan build_plan(const onnx::Model &model);

// Whether every weight, bias and embedding value of the plan is finite (a model that is not can only
// produce NaN/Inf images).
bool all_finite(const Plan &plan);

}  // namespace onnxgan
#endif
