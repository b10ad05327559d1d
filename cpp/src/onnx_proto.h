// The parts of an ONNX ModelProto the sampler needs, parsed with the bounds-checked wire reader.
// Tensor payloads stay views into the file buffer (the buffer must outlive the Model) and are decoded
// only on request, after their element count has been checked against the bytes actually present.
#ifndef ONNXGAN_ONNX_PROTO_H
#define ONNXGAN_ONNX_PROTO_H

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protobuf.h"

namespace onnxgan::onnx {

// TensorProto.DataType values used here.
enum DataType : int32_t { kFloat = 1, kInt32 = 6, kInt64 = 7, kFloat16 = 10, kDouble = 11, kBfloat16 = 16 };
const char *dtype_name(int32_t dtype);

// Caps on repeated structures: every entry costs far more memory than the bytes that declare it, so
// without them a small hostile file could still allocate a lot. Generators need a tiny fraction.
struct Limits {
  static constexpr size_t kNodes = 4096, kInitializers = 4096, kNodeIo = 16, kAttributes = 64;
  static constexpr size_t kGraphIo = 64, kDims = 8, kMetadata = 256, kOpsets = 64, kAttributeInts = 64;
  static constexpr int64_t kTensorElements = int64_t(1) << 31;  // 8 GiB of fp32: a sanity bound only
};

struct Tensor {
  std::string name;
  std::vector<int64_t> dims;
  int32_t dtype = 0;
  bool has_raw = false;
  pb::Bytes raw;      // raw_data
  pb::Bytes message;  // the whole TensorProto, re-read for typed fields (float_data, int32_data, ...)
  bool external = false;
};

struct Attribute {
  std::string name;
  int32_t type = 0;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<Tensor> t;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  bool has_graph = false;  // subgraphs are never run: their presence alone refuses the node
};

struct Node {
  std::string op_type, domain, name;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
  const Attribute *attribute(const std::string &name) const;
};

struct Dim {
  int64_t value = -1;  // -1 when symbolic or absent
};

struct ValueInfo {
  std::string name;
  int32_t dtype = 0;
  bool has_shape = false;
  std::vector<Dim> dims;
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<Tensor> initializers;
  std::vector<ValueInfo> inputs, outputs;
};

struct Model {
  int64_t ir_version = 0;
  std::vector<std::pair<std::string, int64_t>> opsets;  // (domain, version)
  Graph graph;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Parses a ModelProto. Throws onnxgan::Error (format/unsupported) on anything malformed.
Model parse_model(pb::Bytes file);

// Element count of a tensor from its dims, checked (each dim >= 0, product <= Limits::kTensorElements).
int64_t element_count(const Tensor &tensor);
// FLOAT or FLOAT16 data (raw_data or typed fields) as fp32; the count must equal element_count.
std::vector<float> tensor_floats(const Tensor &tensor);
// INT64 data (raw_data or int64_data); the count must equal element_count.
std::vector<int64_t> tensor_int64s(const Tensor &tensor);

}  // namespace onnxgan::onnx
#endif
