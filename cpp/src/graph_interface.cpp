// The contract's graph interface: the graph's inputs and output against the metadata (metadata.cpp),
// in the order and with the refusal phrases of the Python reader (runtime/contract.py), whose twin
// this is. See docs/onnx-contract.md.
#include <map>
#include <string>

#include "metadata.h"
#include "onnx_proto.h"

namespace onnxgan {
namespace {

// "(N, 100)": a value's dims as a refusal shows them, the batch dim named N and other free dims "?".
std::string dims_text(const std::vector<onnx::Dim> &dims) {
  std::string text = "(";
  for (size_t i = 0; i < dims.size(); ++i)
    text += (i ? ", " : "") + (dims[i].value >= 0 ? std::to_string(dims[i].value) : std::string(i ? "?" : "N"));
  return text + ")";
}

}  // namespace

// z, the label input against num_classes, no other input, then the one output image against
// image_shape.
void check_graph_interface(const onnx::Model &model, const Contract &contract) {
  std::map<std::string, bool> is_initializer;
  for (const onnx::Tensor &tensor : model.graph.initializers) is_initializer[tensor.name] = true;
  const onnx::ValueInfo *z = nullptr, *label = nullptr, *image = nullptr;
  for (const onnx::ValueInfo &info : model.graph.inputs) {
    if (is_initializer.count(info.name)) continue;  // IR < 4 lists initializers as inputs too
    if (info.name == "z") z = &info;
    if (info.name == "label") label = &info;
  }
  if (!z) refuse("input", "z", "is missing", "the contract's latent input is z, float32 (N, latent_dim)");
  if (z->dtype != onnx::kFloat || z->dims.size() != 2) refuse("input", "z", "has the wrong type", "expected float32 (N, latent_dim)");
  if (z->dims[1].value != contract.latent_dim)
    refuse("metadata", "latent_dim", "disagrees with the graph",
           std::to_string(contract.latent_dim) + ", the graph's z is " + dims_text(z->dims));
  if ((label != nullptr) != (contract.num_classes > 0))
    refuse("metadata", "num_classes", "disagrees with the graph",
           std::to_string(contract.num_classes) + (label ? ", but the graph has a label input" : ", but the graph has no label input"));
  if (label && (label->dtype != onnx::kInt64 || label->dims.size() != 1))
    refuse("input", "label", "has the wrong type", "expected int64 (N,)");
  for (const onnx::ValueInfo &info : model.graph.inputs)
    if (info.name != "z" && info.name != "label" && !is_initializer.count(info.name))
      refuse("input", info.name, "is not supported", "the contract's inputs are z and label");
  for (const onnx::ValueInfo &info : model.graph.outputs)
    if (info.name == "image") image = &info;
  if (!image) refuse("output", "image", "is missing", "the contract's output is image, float32 (N, C, H, W)");
  for (const onnx::ValueInfo &info : model.graph.outputs)
    if (info.name != "image") refuse("output", info.name, "is not supported", "the contract's only output is image");
  if (image->dtype != onnx::kFloat || image->dims.size() != 4)
    refuse("output", "image", "has the wrong type", "expected float32 (N, C, H, W)");
  const int64_t shape[3] = {contract.channels, contract.height, contract.width};
  for (int i = 0; i < 3; ++i)
    if (image->dims[size_t(i) + 1].value != shape[i])
      refuse("metadata", "image_shape", "disagrees with the graph", "[" + std::to_string(shape[0]) + ", " +
             std::to_string(shape[1]) + ", " + std::to_string(shape[2]) + "], the graph's image is " + dims_text(image->dims));
}

}  // namespace onnxgan
