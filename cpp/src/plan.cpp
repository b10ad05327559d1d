// The plan builder (plan.h): walks the nodes (ONNX orders them topologically) and accepts only a chain
// input -> [Gather + Concat] -> (Gemm | MatMul [+ Add]) [activation] ... [Reshape] -> output,
// or, for conv generators, ... -> Reshape to (C, H, W) -> ((Conv | ConvTranspose) [activation] |
// Resize | Upsample) ... -> output (the image ops are read by image_reader.cpp),
// with weights from initializers, Constant nodes or Cast(fp16 initializer). Each op has one handler,
// found in a table. First the contract: the metadata and the graph's interface (metadata.h).
#include <cmath>
#include <map>
#include <string>

#include "error.h"
#include "image_reader.h"
#include "metadata.h"
#include "plan.h"

namespace onnxgan {
namespace {

using onnx::Node;
using onnx::Tensor;

const char *kSupported =
    "the native sampler runs the generators gan-export writes (Gemm/MatMul + Add, Relu, LeakyRelu, Tanh, "
    "Sigmoid, Reshape, Gather + Concat for labels, Conv, ConvTranspose, nearest Resize/Upsample); use the "
    "onnxruntime backend for this model";

// What a graph value is while walking the chain.
struct Value {
  enum Kind { kActivation, kLabel, kConstant, kEmbedding } kind = kConstant;
  const Tensor *tensor = nullptr;  // kConstant
  bool cast_to_float = false;      // kConstant passed through Cast(to=FLOAT)
};

class Builder {
 public:
  explicit Builder(const onnx::Model &model) : model_(model) {}
  Plan build();

  // One handler per op (the table kHandlers): checks the node and adds it to the plan.
  using Handler = void (Builder::*)(const Node &node);
  void on_constant(const Node &node);
  void on_cast(const Node &node);
  void on_gemm(const Node &node);
  void on_matmul(const Node &node);
  void on_add(const Node &node);
  void on_activation(const Node &node);
  void on_conv(const Node &node);
  void on_upsample(const Node &node);
  void on_reshape(const Node &node);
  void on_identity(const Node &node);
  void on_gather(const Node &node);
  void on_concat(const Node &node);

 private:
  void read_inputs(const Contract &contract);
  void visit(const Node &node);
  const Value &input(const Node &node, size_t index);
  void require_current(const Node &node, size_t index);
  std::vector<float> floats(const Node &node, size_t index);
  void define_activation(const Node &node);
  void add_layer(const Node &node, std::vector<float> weight, bool weight_is_out_in, std::vector<float> bias);
  void add_step(const Node &node, ImageStep step, bool takes_activation);
  void apply(const Contract &contract);

  const onnx::Model &model_;
  Plan plan_;
  std::map<std::string, Value> values_;
  std::string current_;                // the activation the chain has reached
  std::vector<int64_t> current_dims_;  // its dims after the batch dimension
  // The last node was a layer (Add may fold in) or a convolution with no activation yet.
  enum class Open { kNone, kLayer, kConv } open_ = Open::kNone;
  bool has_label_input_ = false, concat_done_ = false;
  bool all_float16_ = true;            // every layer so far took fp16 weights as they are (Plan::float16_weights)
  const Tensor *embedding_ = nullptr;
};

const Value &Builder::input(const Node &node, size_t index) {
  if (index >= node.inputs.size() || node.inputs[index].empty()) refuse_node(node, "missing input " + std::to_string(index));
  const auto found = values_.find(node.inputs[index]);
  if (found == values_.end()) fail_format("node '" + node.name + "' reads '" + node.inputs[index] + "', which is never defined");
  return found->second;
}

void Builder::require_current(const Node &node, size_t index) {
  const Value &value = input(node, index);
  if (value.kind != Value::kActivation) refuse_node(node, "input " + std::to_string(index) + " must be the activation");
  if (node.inputs[index] != current_) refuse_node(node, "the graph branches; only a single chain of layers is supported");
}

std::vector<float> Builder::floats(const Node &node, size_t index) {
  const Value &value = input(node, index);
  if (value.kind != Value::kConstant) refuse_node(node, "input " + std::to_string(index) + " must be a constant (initializer)");
  if (value.tensor->dtype == onnx::kFloat16 && !value.cast_to_float)
    refuse_node(node, "float16 weights must pass through Cast(to=float)");
  return onnx::tensor_floats(*value.tensor);
}

void Builder::define_activation(const Node &node) {
  if (node.outputs.empty() || node.outputs[0].empty()) refuse_node(node, "it has no output");
  current_ = node.outputs[0];
  values_[current_] = Value{Value::kActivation};
}

void Builder::read_inputs(const Contract &contract) {
  for (const Tensor &tensor : model_.graph.initializers) values_[tensor.name] = Value{Value::kConstant, &tensor};
  plan_.latent_dim = contract.latent_dim;
  current_ = "z";
  current_dims_ = {plan_.latent_dim};
  values_["z"] = Value{Value::kActivation};  // an input of the same name as an initializer overrides it
  if (contract.num_classes > 0) {
    has_label_input_ = true;
    values_["label"] = Value{Value::kLabel};
  }
}

void Builder::add_layer(const Node &node, std::vector<float> weight, bool weight_is_out_in, std::vector<float> bias) {
  if (current_dims_.size() != 1) refuse_node(node, "its input must be 2-D (N, features)");
  const int64_t in = current_dims_[0];
  if (in <= 0 || weight.size() % size_t(in) != 0 || weight.empty()) refuse_node(node, "the weight does not match the input width " + std::to_string(in));
  const int64_t out = int64_t(weight.size()) / in;
  Layer layer;
  layer.in = in;
  layer.out = out;
  if (weight_is_out_in) {
    layer.weight = std::move(weight);
  } else {  // (in, out) -> (out, in)
    layer.weight.resize(weight.size());
    for (int64_t k = 0; k < in; ++k)
      for (int64_t j = 0; j < out; ++j) layer.weight[size_t(j * in + k)] = weight[size_t(k * out + j)];
  }
  if (bias.empty()) bias.assign(size_t(out), 0.0f);
  if (int64_t(bias.size()) != out) refuse_node(node, "the bias has " + std::to_string(bias.size()) + " values for " + std::to_string(out) + " outputs");
  layer.bias = std::move(bias);
  plan_.layers.push_back(std::move(layer));
  current_dims_ = {out};
  open_ = Open::kLayer;
  define_activation(node);
}

// Conv or ConvTranspose (image_reader.cpp reads its attributes).
void Builder::on_conv(const Node &node) {
  require_current(node, 0);
  std::vector<float> weight = floats(node, 1);  // checks that input 1 is a constant first
  const Tensor &w = *input(node, 1).tensor;
  std::vector<float> bias;
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    bias = floats(node, 2);
    if (input(node, 2).tensor->dims.size() != 1) refuse_node(node, "the bias must be 1-D (C_out,)");
  }
  all_float16_ &= w.dtype == onnx::kFloat16;
  add_step(node, read_conv(node, current_dims_, w.dims, weight, std::move(bias)), true);
}

// Resize (X, [roi, scales[, sizes]]; opset 10: X, scales) or Upsample (X, scales; opset 7: a scales
// attribute), the scales a constant.
void Builder::on_upsample(const Node &node) {
  require_current(node, 0);
  std::vector<float> scales;
  const onnx::Attribute *attribute = node.attribute("scales");
  if (node.op_type == "Upsample" && attribute && node.inputs.size() < 2) {
    scales = attribute->floats;
  } else {
    const size_t index = node.op_type == "Resize" && node.inputs.size() > 2 ? 2 : 1;
    if (node.inputs.size() > 3 && !node.inputs[3].empty()) refuse_node(node, "sizes is not supported (give scales)");
    const Value &value = input(node, index);
    if (value.kind != Value::kConstant || value.tensor->dtype != onnx::kFloat) refuse_node(node, "the scales must be a float32 constant");
    scales = onnx::tensor_floats(*value.tensor);
  }
  add_step(node, read_upsample(node, current_dims_, scales), false);
}

void Builder::add_step(const Node &node, ImageStep step, bool takes_activation) {
  current_dims_ = {step.out_shape[0], step.out_shape[1], step.out_shape[2]};
  plan_.steps.push_back(std::move(step));
  open_ = takes_activation ? Open::kConv : Open::kNone;
  define_activation(node);
}

// Checks a weight's dims exactly, so that a file with swapped or wrong dims is refused. `expected`
// names the layout, e.g. "(out, 100)"; a dim of -1 in `dims` matches anything.
void check_dims(const Node &node, const Tensor &tensor, const std::vector<int64_t> &dims, const std::string &expected) {
  bool ok = tensor.dims.size() == dims.size();
  for (size_t i = 0; ok && i < dims.size(); ++i) ok = dims[i] == -1 ? tensor.dims[i] > 0 : tensor.dims[i] == dims[i];
  if (ok) return;
  std::string found;
  for (int64_t d : tensor.dims) found += (found.empty() ? "" : ", ") + std::to_string(d);
  fail_unsupported("node '" + node.name + "' (" + node.op_type + "): tensor '" + tensor.name + "' has dims (" + found +
                   "), expected " + expected);
}

// A node's integer or float attribute, or `fallback` when the node does not set it.
int64_t attr_i(const Node &node, const char *name, int64_t fallback) {
  const onnx::Attribute *a = node.attribute(name);
  return a ? a->i : fallback;
}

float attr_f(const Node &node, const char *name, float fallback) {
  const onnx::Attribute *a = node.attribute(name);
  return a ? a->f : fallback;
}

void Builder::on_constant(const Node &node) {
  const onnx::Attribute *value = node.attribute("value");
  if (!value || !value->t) refuse_node(node, "only Constant with a tensor 'value' is supported");
  if (node.outputs.empty()) refuse_node(node, "it has no output");
  values_[node.outputs[0]] = Value{Value::kConstant, value->t.get()};
}

void Builder::on_cast(const Node &node) {
  const Value source = input(node, 0);
  if (attr_i(node, "to", 0) != onnx::kFloat) refuse_node(node, "only Cast to float32 is supported");
  if (node.outputs.empty()) refuse_node(node, "it has no output");
  if (source.kind == Value::kActivation) {  // a no-op on float activations
    require_current(node, 0);
    define_activation(node);
    return;
  }
  if (source.kind != Value::kConstant || (source.tensor->dtype != onnx::kFloat16 && source.tensor->dtype != onnx::kFloat))
    refuse_node(node, "only Cast of float16/float32 initializers is supported");
  values_[node.outputs[0]] = Value{Value::kConstant, source.tensor, true};
}

// Gemm(A, B[, C]): y = alpha * A B' + beta * C, B' = B or B^T (transB).
void Builder::on_gemm(const Node &node) {
  require_current(node, 0);
  if (attr_i(node, "transA", 0) != 0) refuse_node(node, "transA=1 is not supported");
  const bool trans_b = attr_i(node, "transB", 0) != 0;
  const float alpha = attr_f(node, "alpha", 1.0f), beta = attr_f(node, "beta", 1.0f);
  std::vector<float> weight = floats(node, 1);  // checks that input 1 is a constant first
  const Tensor &b = *input(node, 1).tensor;
  if (current_dims_.size() != 1) refuse_node(node, "its input must be 2-D (N, features)");
  const int64_t in = current_dims_[0];
  if (trans_b)
    check_dims(node, b, {-1, in}, "(out, " + std::to_string(in) + ") with transB=1");
  else
    check_dims(node, b, {in, -1}, "(" + std::to_string(in) + ", out) with transB=0");
  std::vector<float> bias;
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    bias = floats(node, 2);
    const int64_t out = trans_b ? b.dims[0] : b.dims[1];
    const Tensor &c = *input(node, 2).tensor;
    if (!(c.dims == std::vector<int64_t>{out} || c.dims == std::vector<int64_t>{1, out}))
      refuse_node(node, "the bias must have dims (" + std::to_string(out) + ") or (1, " + std::to_string(out) + ")");
    for (float &v : bias) v *= beta;
  }
  if (alpha != 1.0f)
    for (float &v : weight) v *= alpha;
  all_float16_ &= b.dtype == onnx::kFloat16 && alpha == 1.0f;
  add_layer(node, std::move(weight), trans_b, std::move(bias));
}

void Builder::on_matmul(const Node &node) {
  require_current(node, 0);
  std::vector<float> weight = floats(node, 1);
  const Tensor &b = *input(node, 1).tensor;
  if (current_dims_.size() != 1) refuse_node(node, "its input must be 2-D (N, features)");
  check_dims(node, b, {current_dims_[0], -1}, "(" + std::to_string(current_dims_[0]) + ", out)");
  all_float16_ &= b.dtype == onnx::kFloat16;
  add_layer(node, std::move(weight), false, {});
}

// Add folds into the bias of the layer just before it (either input order).
void Builder::on_add(const Node &node) {
  const size_t act = input(node, 0).kind == Value::kActivation ? 0 : 1;
  require_current(node, act);
  if (open_ != Open::kLayer) refuse_node(node, "Add is supported only as the bias right after MatMul/Gemm");
  std::vector<float> bias = floats(node, 1 - act);
  const Tensor &c = *input(node, 1 - act).tensor;
  Layer &layer = plan_.layers.back();
  if (!(c.dims == std::vector<int64_t>{layer.out} || c.dims == std::vector<int64_t>{1, layer.out}))
    refuse_node(node, "the bias must have dims (" + std::to_string(layer.out) + ")");
  for (int64_t j = 0; j < layer.out; ++j) layer.bias[size_t(j)] += bias[size_t(j)];
  define_activation(node);
}

// Relu, LeakyRelu, Tanh or Sigmoid: fused into the layer or convolution just before it.
void Builder::on_activation(const Node &node) {
  require_current(node, 0);
  if (open_ == Open::kNone) refuse_node(node, "activations are supported only right after a Gemm/MatMul (+ Add) or a convolution");
  const std::string &op = node.op_type;
  const Activation activation = op == "Relu" ? Activation::kRelu
                                : op == "LeakyRelu" ? Activation::kLeakyRelu
                                : op == "Tanh" ? Activation::kTanh : Activation::kSigmoid;
  const float alpha = attr_f(node, "alpha", 0.01f);
  if (!std::isfinite(alpha)) refuse_node(node, "alpha must be finite");
  if (open_ == Open::kLayer)
    plan_.layers.back().activation = activation, plan_.layers.back().alpha = alpha;
  else
    plan_.steps.back().activation = activation, plan_.steps.back().alpha = alpha;
  open_ = Open::kNone;
  define_activation(node);
}

// Reshape (to (-1, ...) with 1 to 3 fixed dims) or Flatten (axis 1), only before the image steps.
void Builder::on_reshape(const Node &node) {
  require_current(node, 0);
  if (!plan_.steps.empty()) refuse_node(node, "reshaping the output of a convolution or upsampling is not supported");
  int64_t features = 1;
  for (int64_t d : current_dims_) features *= d;
  std::vector<int64_t> dims;
  if (node.op_type == "Flatten") {
    if (attr_i(node, "axis", 1) != 1) refuse_node(node, "only axis=1 is supported");
    dims = {features};
  } else {
    const Value &shape_value = input(node, 1);
    if (shape_value.kind != Value::kConstant) refuse_node(node, "the shape must be a constant");
    const std::vector<int64_t> shape = onnx::tensor_int64s(*shape_value.tensor);
    if (shape.size() < 2 || shape.size() > 4 || (shape[0] != -1 && shape[0] != 0) || attr_i(node, "allowzero", 0) != 0)
      refuse_node(node, "the shape must be (-1, ...) with 1 to 3 fixed dims after the batch");
    int64_t product = 1;
    for (size_t i = 1; i < shape.size(); ++i) {
      if (shape[i] <= 0 || shape[i] > features / product) refuse_node(node, "the shape must have positive fixed dims after the batch");
      product *= shape[i];
      dims.push_back(shape[i]);
    }
    if (product != features) refuse_node(node, "the shape does not hold " + std::to_string(features) + " values per sample");
  }
  current_dims_ = dims;
  define_activation(node);  // row-major data is unchanged: a reshape costs nothing
}

void Builder::on_identity(const Node &node) {
  require_current(node, 0);
  define_activation(node);
}

// Gather(embedding (classes, E), label, axis 0): the label embedding of a conditional model.
void Builder::on_gather(const Node &node) {
  if (input(node, 0).kind != Value::kConstant || input(node, 1).kind != Value::kLabel || attr_i(node, "axis", 0) != 0)
    refuse_node(node, "only Gather(embedding initializer, label, axis=0) is supported");
  const Tensor &table = *input(node, 0).tensor;
  if (table.dims.size() != 2 || embedding_) refuse_node(node, "the embedding must be one 2-D table (classes, E)");
  plan_.embedding = floats(node, 0);
  plan_.num_classes = table.dims[0];
  plan_.embed_dim = table.dims[1];
  embedding_ = &table;
  if (node.outputs.empty()) refuse_node(node, "it has no output");
  values_[node.outputs[0]] = Value{Value::kEmbedding};
}

// Concat([z, embedding], axis 1) (either order), before the first layer.
void Builder::on_concat(const Node &node) {
  const int64_t axis = attr_i(node, "axis", 0);
  if (node.inputs.size() != 2 || (axis != 1 && axis != -1) || concat_done_ || !plan_.layers.empty())
    refuse_node(node, "only Concat([z, embedding], axis=1) before the first layer is supported");
  const size_t z_index = input(node, 0).kind == Value::kEmbedding ? 1 : 0;
  require_current(node, z_index);
  if (input(node, 1 - z_index).kind != Value::kEmbedding) refuse_node(node, "it must join z and the label embedding");
  plan_.embedding_first = z_index == 1;
  current_dims_ = {plan_.latent_dim + plan_.embed_dim};
  concat_done_ = true;
  define_activation(node);
}

// Each supported op and its handler; any other op is refused with kSupported.
struct OpHandler {
  const char *op_type;
  Builder::Handler handler;
};
constexpr OpHandler kHandlers[] = {
    {"Constant", &Builder::on_constant},    {"Cast", &Builder::on_cast},
    {"Gemm", &Builder::on_gemm},            {"MatMul", &Builder::on_matmul},
    {"Add", &Builder::on_add},              {"Relu", &Builder::on_activation},
    {"LeakyRelu", &Builder::on_activation}, {"Tanh", &Builder::on_activation},
    {"Sigmoid", &Builder::on_activation},   {"Conv", &Builder::on_conv},
    {"ConvTranspose", &Builder::on_conv},   {"Resize", &Builder::on_upsample},
    {"Upsample", &Builder::on_upsample},    {"Reshape", &Builder::on_reshape},
    {"Flatten", &Builder::on_reshape},      {"Identity", &Builder::on_identity},
    {"Gather", &Builder::on_gather},        {"Concat", &Builder::on_concat},
};

void Builder::visit(const Node &node) {
  if (!node.domain.empty() && node.domain != "ai.onnx")
    fail_unsupported("op '" + node.op_type + "' from domain '" + node.domain + "' is not supported: " + kSupported);
  for (const onnx::Attribute &a : node.attributes)
    if (a.has_graph) refuse_node(node, "subgraphs are not supported");
  for (const OpHandler &entry : kHandlers)
    if (node.op_type == entry.op_type) return (this->*entry.handler)(node);
  fail_unsupported("op '" + node.op_type + "' (node '" + node.name + "') is not supported: " + kSupported);
}

// The graph's body against the contract: checks only this library makes (onnxruntime meets the same
// faults when it runs the model).
void Builder::apply(const Contract &contract) {
  if (plan_.num_classes != contract.num_classes)
    refuse("metadata", "num_classes", "disagrees with the graph",
           std::to_string(contract.num_classes) + ", the label embedding has " + std::to_string(plan_.num_classes) + " rows");
  const int64_t c = contract.channels, h = contract.height, w = contract.width;
  const int64_t size = plan_.steps.empty() ? plan_.layers.back().out : plan_.steps.back().out_size();
  if (double(c) * double(h) * double(w) != double(size) || (current_dims_.size() == 3 && current_dims_ != std::vector<int64_t>{c, h, w}))
    refuse("metadata", "image_shape", "disagrees with the graph", "the layers make " + std::to_string(size) + " values per image");
  plan_.channels = c, plan_.height = h, plan_.width = w;
  plan_.value_min = contract.value_min;
  plan_.value_max = contract.value_max;
}

Plan Builder::build() {
  bool has_default_opset = false;
  for (const auto &opset : model_.opsets)
    if (opset.first.empty() || opset.first == "ai.onnx") has_default_opset = opset.second >= 7;
  const Contract contract = read_contract(model_.metadata);
  check_graph_interface(model_, contract);
  if (!has_default_opset) fail_unsupported("the model needs the default ONNX opset, version 7 or newer");
  read_inputs(contract);
  for (const Node &node : model_.graph.nodes) visit(node);
  if (plan_.layers.empty()) fail_unsupported("the graph has no Gemm/MatMul layer");
  if (has_label_input_ != concat_done_)
    fail_unsupported("a label input must feed Gather + Concat with z (and only then is one allowed)");
  if (current_ != "image") fail_unsupported("the output 'image' is not the end of the layer chain");
  plan_.float16_weights = all_float16_;
  apply(contract);
  return std::move(plan_);
}

}  // namespace

void refuse_node(const onnx::Node &node, const std::string &why) {
  fail_unsupported("node '" + node.name + "' (" + node.op_type + "): " + why);
}

Plan build_plan(const onnx::Model &model) { return Builder(model).build(); }

bool all_finite(const Plan &plan) {
  const auto finite = [](const std::vector<float> &values) {
    for (float v : values)
      if (!std::isfinite(v)) return false;
    return true;
  };
  bool ok = finite(plan.embedding);
  for (const Layer &layer : plan.layers) ok &= finite(layer.weight) && finite(layer.bias);
  for (const ImageStep &step : plan.steps) ok &= finite(step.conv.weight) && finite(step.conv.bias);
  return ok;
}

}  // namespace onnxgan
