// A bounds-checked reader of the protobuf wire format (no generated code, no allocation).
// Every length is checked against the bytes that remain, so a hostile file can neither read out of
// bounds nor make the reader allocate: a field's payload is a view into the caller's buffer.
#ifndef ONNXGAN_PROTOBUF_H
#define ONNXGAN_PROTOBUF_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace onnxgan::pb {

// A view of bytes owned by someone else (the file buffer).
struct Bytes {
  const uint8_t *data = nullptr;
  size_t size = 0;
};

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  WireType type = kVarint;
  uint64_t value = 0;  // kVarint, kFixed64, kFixed32: the raw bits
  Bytes bytes;         // kLength: the payload
};

// Iterates over the fields of one message. Throws onnxgan::Error (format) on malformed input.
class Reader {
 public:
  explicit Reader(Bytes message) : pos_(message.data), end_(message.data + message.size) {}
  // Reads the next field into `field`; false at the end of the message.
  bool next(Field &field);

 private:
  uint64_t varint();
  const uint8_t *pos_;
  const uint8_t *end_;
};

// Iterates over the elements of a packed repeated field (or one unpacked element).
class PackedReader {
 public:
  explicit PackedReader(Bytes payload) : pos_(payload.data), end_(payload.data + payload.size) {}
  bool done() const { return pos_ == end_; }
  uint64_t varint();
  uint32_t fixed32();
  uint64_t fixed64();

 private:
  const uint8_t *pos_;
  const uint8_t *end_;
};

std::string to_string(Bytes bytes);
// The 32 raw bits of a kFixed32 field as a float.
float bits_to_float(uint64_t bits);

}  // namespace onnxgan::pb
#endif
