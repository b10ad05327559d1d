// The library's internal error: a status code from sampler.h plus a message. Thrown inside the
// library, caught at the C ABI (c_abi.cpp), never let across it.
#ifndef ONNXGAN_ERROR_H
#define ONNXGAN_ERROR_H

#include <cstdint>
#include <stdexcept>
#include <string>

#include "onnxgan/sampler.h"

namespace onnxgan {

class Error : public std::runtime_error {
 public:
  Error(onnxgan_status status, const std::string &message) : std::runtime_error(message), status(status) {}
  onnxgan_status status;
};

// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by '?': messages
// quote names and values from the file, and callers (Python's str, a terminal) need valid UTF-8.
inline std::string valid_utf8(const std::string &text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t length = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = length != 0 && i + length <= text.size();
    for (size_t k = 1; ok && k < length; ++k) ok = (static_cast<unsigned char>(text[i + k]) >> 6) == 2;
    if (ok && length > 1) {  // no overlong forms, no surrogates, nothing past U+10FFFF
      uint32_t code = c & (0x7F >> length);
      for (size_t k = 1; k < length; ++k) code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = code >= least[length] && code <= 0x10FFFF && !(code >= 0xD800 && code < 0xE000);
    }
    if (ok) out.append(text, i, length), i += length;
    else out += '?', ++i;
  }
  return out;
}

// A file that is not valid protobuf/ONNX, or whose declared sizes disagree with its contents.
[[noreturn]] inline void fail_format(const std::string &message) { throw Error(ONNXGAN_ERROR_FORMAT, valid_utf8(message)); }
// A field that runs past the end of the bytes it is read from (protobuf.cpp). At the top of a file that
// began as a model, the file is cut short (onnx_proto.cpp's parse_model says so in those words).
class Truncated : public Error {
 public:
  explicit Truncated(const std::string &message) : Error(ONNXGAN_ERROR_FORMAT, message) {}
};
[[noreturn]] inline void fail_truncated(const std::string &message) { throw Truncated(valid_utf8(message)); }

// A valid ONNX file this library cannot run (an op, dtype or graph shape it does not support).
[[noreturn]] inline void fail_unsupported(const std::string &message) {
  throw Error(ONNXGAN_ERROR_UNSUPPORTED, valid_utf8(message));
}
// A bad argument from the caller (shapes, labels, buffer sizes).
[[noreturn]] inline void fail_argument(const std::string &message) { throw Error(ONNXGAN_ERROR_ARGUMENT, valid_utf8(message)); }

}  // namespace onnxgan
#endif
