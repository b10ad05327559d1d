// The validated, backend-neutral description of an MLP generator: what validate.cpp extracts from an
// ONNX graph and what the forward pass (network.h) packs and runs.
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

struct Plan {
  int64_t latent_dim = 0;
  // Conditional models: the first layer's input is concat(z, embedding[label]) (or the reverse).
  int64_t num_classes = 0, embed_dim = 0;
  bool embedding_first = false;
  std::vector<float> embedding;  // (num_classes, embed_dim)
  std::vector<Layer> layers;
  int64_t channels = 1, height = 1, width = 1;  // one image; C*H*W == layers.back().out
  float value_min = -1.0f, value_max = 1.0f;
  bool float16_weights = false;  // every layer's weights are fp16 in the file (unscaled): fp16 storage is exact
};

// Checks that the graph is an MLP generator this library runs and extracts it; throws onnxgan::Error
// (unsupported, naming the op or construct, or format) otherwise.
Plan build_plan(const onnx::Model &model);

}  // namespace onnxgan
#endif
