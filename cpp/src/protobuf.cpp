// Bounds-checked protobuf wire-format decoding (see protobuf.h).
#include "protobuf.h"

#include <cstring>

#include "error.h"

namespace onnxgan::pb {
namespace {

// A varint is at most 10 bytes; the 10th may only carry the top bit of a uint64.
uint64_t read_varint(const uint8_t *&pos, const uint8_t *end) {
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos == end) fail_truncated("truncated varint");
    const uint8_t byte = *pos++;
    if (shift == 63 && byte > 1) fail_format("varint overflows 64 bits");
    value |= uint64_t(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  fail_format("varint longer than 10 bytes");
}

uint64_t read_fixed(const uint8_t *&pos, const uint8_t *end, size_t size) {
  if (size_t(end - pos) < size) fail_truncated("truncated fixed-width field");
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value |= uint64_t(pos[i]) << (8 * i);  // little-endian on any host
  pos += size;
  return value;
}

}  // namespace

uint64_t Reader::varint() { return read_varint(pos_, end_); }

bool Reader::next(Field &field) {
  if (pos_ == end_) return false;
  const uint64_t key = varint();
  const uint64_t number = key >> 3;
  if (number == 0 || number > 0x1fffffff) fail_format("invalid protobuf field number");
  field.number = uint32_t(number);
  field.type = WireType(key & 7);
  switch (field.type) {
    case kVarint:
      field.value = varint();
      break;
    case kFixed64:
      field.value = read_fixed(pos_, end_, 8);
      break;
    case kFixed32:
      field.value = read_fixed(pos_, end_, 4);
      break;
    case kLength: {
      const uint64_t size = varint();
      if (size > uint64_t(end_ - pos_)) fail_truncated("a length-delimited field runs past the end of its message");
      field.bytes = Bytes{pos_, size_t(size)};
      pos_ += size;
      break;
    }
    default:
      fail_format("unsupported protobuf wire type " + std::to_string(int(field.type)));
  }
  return true;
}

uint64_t PackedReader::varint() { return read_varint(pos_, end_); }
uint32_t PackedReader::fixed32() { return uint32_t(read_fixed(pos_, end_, 4)); }
uint64_t PackedReader::fixed64() { return read_fixed(pos_, end_, 8); }

std::string to_string(Bytes bytes) { return std::string(reinterpret_cast<const char *>(bytes.data), bytes.size); }

float bits_to_float(uint64_t bits) {
  const uint32_t word = uint32_t(bits);
  float value;
  std::memcpy(&value, &word, sizeof value);
  return value;
}

}  // namespace onnxgan::pb
