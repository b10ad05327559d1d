// ModelProto parsing for the fields listed in onnx_proto.h; field numbers from onnx/onnx.proto.
#include "onnx_proto.h"

#include "error.h"
#include "fp16.h"

namespace onnxgan::onnx {
namespace {

using pb::Bytes;
using pb::Field;
using pb::Reader;

void expect(const Field &field, pb::WireType type, const char *what) {
  if (field.type != type) fail_format(std::string("wrong wire type for ") + what);
}

template <class T>
T &append(std::vector<T> &items, size_t limit, const char *what) {
  if (items.size() >= limit) fail_unsupported(std::string("too many ") + what + " (at most " + std::to_string(limit) + ")");
  return items.emplace_back();
}

// Appends the int64 elements of a repeated int64 field, packed or not.
void read_int64s(const Field &field, std::vector<int64_t> &out, size_t limit, const char *what) {
  if (field.type == pb::kVarint) {
    append(out, limit, what) = int64_t(field.value);
    return;
  }
  expect(field, pb::kLength, what);
  pb::PackedReader packed(field.bytes);
  while (!packed.done()) append(out, limit, what) = int64_t(packed.varint());
}

Tensor parse_tensor(Bytes message) {
  Tensor tensor;
  tensor.message = message;
  Reader reader(message);
  Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case 1: read_int64s(field, tensor.dims, Limits::kDims, "tensor dims"); break;
      case 2: expect(field, pb::kVarint, "data_type"); tensor.dtype = int32_t(field.value); break;
      case 8: expect(field, pb::kLength, "tensor name"); tensor.name = pb::to_string(field.bytes); break;
      case 9: expect(field, pb::kLength, "raw_data"); tensor.raw = field.bytes; tensor.has_raw = true; break;
      case 13: tensor.external = true; break;                          // external_data
      case 14: tensor.external |= field.value == 1; break;             // data_location EXTERNAL
      case 3: fail_unsupported("segmented tensors are not supported");  // segment
      default: break;  // typed data fields are read on demand; doc_string etc. ignored
    }
  }
  return tensor;
}

Attribute parse_attribute(Bytes message) {
  Attribute attribute;
  Reader reader(message);
  Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case 1: expect(field, pb::kLength, "attribute name"); attribute.name = pb::to_string(field.bytes); break;
      case 20: expect(field, pb::kVarint, "attribute type"); attribute.type = int32_t(field.value); break;
      case 2: expect(field, pb::kFixed32, "attribute f"); attribute.f = pb::bits_to_float(field.value); break;
      case 3: expect(field, pb::kVarint, "attribute i"); attribute.i = int64_t(field.value); break;
      case 4: expect(field, pb::kLength, "attribute s"); attribute.s = pb::to_string(field.bytes); break;
      case 5:
        expect(field, pb::kLength, "attribute t");
        attribute.t = std::make_shared<Tensor>(parse_tensor(field.bytes));
        break;
      case 6: case 11: attribute.has_graph = true; break;  // g, graphs
      case 7:
        if (field.type == pb::kFixed32) {
          append(attribute.floats, Limits::kAttributeInts, "attribute floats") = pb::bits_to_float(field.value);
        } else {
          expect(field, pb::kLength, "attribute floats");
          pb::PackedReader packed(field.bytes);
          while (!packed.done())
            append(attribute.floats, Limits::kAttributeInts, "attribute floats") = pb::bits_to_float(packed.fixed32());
        }
        break;
      case 8: read_int64s(field, attribute.ints, Limits::kAttributeInts, "attribute ints"); break;
      default: break;
    }
  }
  return attribute;
}

Node parse_node(Bytes message) {
  Node node;
  Reader reader(message);
  Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case 1: expect(field, pb::kLength, "node input"); append(node.inputs, Limits::kNodeIo, "node inputs") = pb::to_string(field.bytes); break;
      case 2: expect(field, pb::kLength, "node output"); append(node.outputs, Limits::kNodeIo, "node outputs") = pb::to_string(field.bytes); break;
      case 3: expect(field, pb::kLength, "node name"); node.name = pb::to_string(field.bytes); break;
      case 4: expect(field, pb::kLength, "op_type"); node.op_type = pb::to_string(field.bytes); break;
      case 7: expect(field, pb::kLength, "node domain"); node.domain = pb::to_string(field.bytes); break;
      case 5:
        expect(field, pb::kLength, "attribute");
        append(node.attributes, Limits::kAttributes, "node attributes") = parse_attribute(field.bytes);
        break;
      default: break;
    }
  }
  return node;
}

// TypeProto -> tensor_type -> (elem_type, shape -> dim -> dim_value | dim_param).
void parse_type(Bytes message, ValueInfo &info) {
  Reader type_reader(message);
  Field field;
  while (type_reader.next(field)) {
    if (field.number != 1) continue;  // only tensor_type
    expect(field, pb::kLength, "tensor_type");
    Reader tensor_reader(field.bytes);
    Field tensor_field;
    while (tensor_reader.next(tensor_field)) {
      if (tensor_field.number == 1) {
        expect(tensor_field, pb::kVarint, "elem_type");
        info.dtype = int32_t(tensor_field.value);
      } else if (tensor_field.number == 2) {
        expect(tensor_field, pb::kLength, "shape");
        info.has_shape = true;
        info.dims.clear();
        Reader shape_reader(tensor_field.bytes);
        Field dim_field;
        while (shape_reader.next(dim_field)) {
          if (dim_field.number != 1) continue;
          expect(dim_field, pb::kLength, "dim");
          Dim &dim = append(info.dims, Limits::kDims, "value dims");
          Reader dim_reader(dim_field.bytes);
          Field value;
          while (dim_reader.next(value))
            if (value.number == 1 && value.type == pb::kVarint) dim.value = int64_t(value.value);
        }
      }
    }
  }
}

ValueInfo parse_value_info(Bytes message) {
  ValueInfo info;
  Reader reader(message);
  Field field;
  while (reader.next(field)) {
    if (field.number == 1) {
      expect(field, pb::kLength, "value name");
      info.name = pb::to_string(field.bytes);
    } else if (field.number == 2) {
      expect(field, pb::kLength, "value type");
      parse_type(field.bytes, info);
    }
  }
  return info;
}

Graph parse_graph(Bytes message) {
  Graph graph;
  Reader reader(message);
  Field field;
  while (reader.next(field)) {
    switch (field.number) {
      case 1: expect(field, pb::kLength, "node"); append(graph.nodes, Limits::kNodes, "nodes") = parse_node(field.bytes); break;
      case 5:
        expect(field, pb::kLength, "initializer");
        append(graph.initializers, Limits::kInitializers, "initializers") = parse_tensor(field.bytes);
        break;
      case 11: expect(field, pb::kLength, "graph input"); append(graph.inputs, Limits::kGraphIo, "graph inputs") = parse_value_info(field.bytes); break;
      case 12: expect(field, pb::kLength, "graph output"); append(graph.outputs, Limits::kGraphIo, "graph outputs") = parse_value_info(field.bytes); break;
      case 15: fail_unsupported("sparse initializers are not supported");
      default: break;
    }
  }
  return graph;
}

// Calls visit(bits) for each element of the typed field `number` of a TensorProto (packed or not).
// `width` is 0 for varint elements, 4 or 8 for fixed ones.
template <class Visit>
void for_each_typed(const Tensor &tensor, uint32_t number, int width, Visit visit) {
  Reader reader(tensor.message);
  Field field;
  while (reader.next(field)) {
    if (field.number != number) continue;
    if (field.type == pb::kLength) {
      pb::PackedReader packed(field.bytes);
      while (!packed.done()) visit(width == 0 ? packed.varint() : width == 4 ? packed.fixed32() : packed.fixed64());
    } else if ((width == 0 && field.type == pb::kVarint) || (width == 4 && field.type == pb::kFixed32) ||
               (width == 8 && field.type == pb::kFixed64)) {
      visit(field.value);
    } else {
      fail_format("wrong wire type in the data of tensor '" + tensor.name + "'");
    }
  }
}

// Decodes the typed field into `count` values, counting first so that nothing is allocated unless
// the file really holds exactly `count` elements.
template <class T, class Convert>
std::vector<T> typed_values(const Tensor &tensor, uint32_t number, int width, int64_t count, Convert convert) {
  int64_t present = 0;
  for_each_typed(tensor, number, width, [&](uint64_t) { ++present; });
  if (present != count)
    fail_format("tensor '" + tensor.name + "' declares " + std::to_string(count) + " elements but holds " +
                std::to_string(present));
  std::vector<T> values;
  values.reserve(size_t(count));
  for_each_typed(tensor, number, width, [&](uint64_t bits) { values.push_back(convert(bits)); });
  return values;
}

void check_raw_size(const Tensor &tensor, int64_t count, size_t element_size) {
  if (uint64_t(tensor.raw.size) != uint64_t(count) * element_size)
    fail_format("tensor '" + tensor.name + "' declares " + std::to_string(count) + " elements of " +
                std::to_string(element_size) + " bytes but raw_data holds " + std::to_string(tensor.raw.size) + " bytes");
}

uint64_t load_le(const uint8_t *p, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= uint64_t(p[i]) << (8 * i);
  return value;
}

void check_local(const Tensor &tensor) {
  if (tensor.external)
    fail_unsupported("tensor '" + tensor.name + "' keeps its data in an external file; re-export with the weights inside the model");
}

// The reader's refusals of a whole file in a user's words, the same as the Python reader's
// (runtime/onnx_meta.py; docs/onnx-contract.md): a file that began as a model (its first field is
// ir_version, as every ONNX writer puts it) and whose fields run past its end is cut short; a file
// whose own fields do not parse, or that has no graph, is not an ONNX model.
constexpr const char *kNotOnnx = "not an ONNX model";
constexpr const char *kCutShort = "the file is cut short";

bool next_model_field(Reader &reader, Field &field, bool began) {
  try {
    return reader.next(field);
  } catch (const Truncated &e) {
    if (began) fail_format(std::string(kCutShort) + " (" + e.what() + "); copy or export it again");
    fail_format(std::string(kNotOnnx) + " (" + e.what() + ")");
  } catch (const Error &e) {
    fail_format(std::string(kNotOnnx) + " (" + e.what() + ")");
  }
}

}  // namespace

const char *dtype_name(int32_t dtype) {
  switch (dtype) {
    case kFloat: return "float32";
    case kInt32: return "int32";
    case kInt64: return "int64";
    case kFloat16: return "float16";
    case kDouble: return "float64";
    case kBfloat16: return "bfloat16";
    default: return "an unsupported dtype";
  }
}

const Attribute *Node::attribute(const std::string &attribute_name) const {
  for (const Attribute &a : attributes)
    if (a.name == attribute_name) return &a;
  return nullptr;
}

Model parse_model(Bytes file) {
  Model model;
  bool has_graph = false, began = false;
  Reader reader(file);
  Field field;
  for (bool first = true; next_model_field(reader, field, began); first = false) {
    if (first) began = field.number == 1 && field.type == pb::kVarint;
    switch (field.number) {
      case 1: expect(field, pb::kVarint, "ir_version"); model.ir_version = int64_t(field.value); break;
      case 7:
        expect(field, pb::kLength, "graph");
        if (has_graph) fail_format("the model holds two graphs");
        model.graph = parse_graph(field.bytes);
        has_graph = true;
        break;
      case 8: {
        expect(field, pb::kLength, "opset_import");
        auto &opset = append(model.opsets, Limits::kOpsets, "opset imports");
        Reader opset_reader(field.bytes);
        Field f;
        while (opset_reader.next(f)) {
          if (f.number == 1 && f.type == pb::kLength) opset.first = pb::to_string(f.bytes);
          if (f.number == 2 && f.type == pb::kVarint) opset.second = int64_t(f.value);
        }
        break;
      }
      case 14: {
        expect(field, pb::kLength, "metadata_props");
        auto &entry = append(model.metadata, Limits::kMetadata, "metadata entries");
        Reader entry_reader(field.bytes);
        Field f;
        while (entry_reader.next(f)) {
          if (f.number == 1 && f.type == pb::kLength) entry.first = pb::to_string(f.bytes);
          if (f.number == 2 && f.type == pb::kLength) entry.second = pb::to_string(f.bytes);
        }
        break;
      }
      default: break;
    }
  }
  if (!has_graph) fail_format(std::string(kNotOnnx) + " (no graph)");
  return model;
}

int64_t element_count(const Tensor &tensor) {
  int64_t count = 1;
  for (int64_t dim : tensor.dims) {
    if (dim < 0) fail_format("tensor '" + tensor.name + "' has a negative dimension");
    if (dim != 0 && count > Limits::kTensorElements / dim)
      fail_format("tensor '" + tensor.name + "' declares an absurd size");
    count *= dim;
  }
  return count;
}

std::vector<float> tensor_floats(const Tensor &tensor) {
  check_local(tensor);
  const int64_t count = element_count(tensor);
  if (tensor.dtype == kFloat) {
    if (!tensor.has_raw) return typed_values<float>(tensor, 4, 4, count, [](uint64_t b) { return pb::bits_to_float(b); });
    check_raw_size(tensor, count, 4);
    std::vector<float> values(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) values[size_t(i)] = pb::bits_to_float(load_le(tensor.raw.data + 4 * i, 4));
    return values;
  }
  if (tensor.dtype == kFloat16) {
    // Typed fp16 lives in int32_data (field 5), one uint16 bit pattern per varint.
    if (!tensor.has_raw) return typed_values<float>(tensor, 5, 0, count, [](uint64_t b) { return half_to_float(uint16_t(b)); });
    check_raw_size(tensor, count, 2);
    std::vector<float> values(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) values[size_t(i)] = half_to_float(uint16_t(load_le(tensor.raw.data + 2 * i, 2)));
    return values;
  }
  fail_unsupported("tensor '" + tensor.name + "' is " + dtype_name(tensor.dtype) + "; weights must be float32 or float16");
}

std::vector<int64_t> tensor_int64s(const Tensor &tensor) {
  check_local(tensor);
  const int64_t count = element_count(tensor);
  if (tensor.dtype != kInt64) fail_unsupported("tensor '" + tensor.name + "' is " + dtype_name(tensor.dtype) + "; expected int64");
  if (!tensor.has_raw) return typed_values<int64_t>(tensor, 7, 0, count, [](uint64_t b) { return int64_t(b); });
  check_raw_size(tensor, count, 8);
  std::vector<int64_t> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[size_t(i)] = int64_t(load_le(tensor.raw.data + 8 * i, 8));
  return values;
}

}  // namespace onnxgan::onnx
