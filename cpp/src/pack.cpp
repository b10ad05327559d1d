// Packing a layer's (out, in) weights into the panels described in kernel.h.
#include <cstring>
#include <new>

#include "fp16.h"
#include "kernel.h"

namespace onnxgan {

PackedLayer pack_layer(const Layer &layer, bool half) {
  PackedLayer packed;
  packed.in = layer.in;
  packed.out = layer.out;
  packed.panels = (layer.out + kPanelWidth - 1) / kPanelWidth;
  packed.activation = layer.activation;
  packed.alpha = layer.alpha;
  packed.half = half;
  const size_t weight_bytes = size_t(layer.in) * kPanelWidth * (half ? 2 : 4);
  packed.panel_bytes = (kPanelWidth * sizeof(float) + weight_bytes + 63) / 64 * 64;
  const size_t total = packed.panel_bytes * size_t(packed.panels);
  auto *memory = static_cast<uint8_t *>(::operator new(total, std::align_val_t(64)));
  packed.data = std::shared_ptr<uint8_t>(memory, [](uint8_t *p) { ::operator delete(p, std::align_val_t(64)); });
  std::memset(memory, 0, total);
  for (int64_t p = 0; p < packed.panels; ++p) {
    auto *bias = const_cast<float *>(packed.bias(p));
    auto *weights = const_cast<void *>(packed.weights(p));
    for (int64_t j = 0; j < packed.columns(p); ++j) {
      const int64_t column = p * kPanelWidth + j;
      bias[j] = layer.bias[size_t(column)];
      const float *row = layer.weight.data() + column * layer.in;  // weight[column, :]
      for (int64_t k = 0; k < layer.in; ++k) {
        const size_t index = size_t(k * kPanelWidth + j);
        if (half)
          static_cast<uint16_t *>(weights)[index] = float_to_half(row[k]);
        else
          static_cast<float *>(weights)[index] = row[k];
      }
    }
  }
  return packed;
}

}  // namespace onnxgan
