// The library's internal error: a status code from sampler.h plus a message. Thrown inside the
// library, caught at the C ABI (sampler.cpp), never let across it.
#ifndef ONNXGAN_ERROR_H
#define ONNXGAN_ERROR_H

#include <stdexcept>
#include <string>

#include "onnxgan/sampler.h"

namespace onnxgan {

class Error : public std::runtime_error {
 public:
  Error(onnxgan_status status, const std::string &message) : std::runtime_error(message), status(status) {}
  onnxgan_status status;
};

// A file that is not valid protobuf/ONNX, or whose declared sizes disagree with its contents.
[[noreturn]] inline void fail_format(const std::string &message) { throw Error(ONNXGAN_ERROR_FORMAT, message); }
// A valid ONNX file this library cannot run (an op, dtype or graph shape it does not support).
[[noreturn]] inline void fail_unsupported(const std::string &message) { throw Error(ONNXGAN_ERROR_UNSUPPORTED, message); }
// A bad argument from the caller (shapes, labels, buffer sizes).
[[noreturn]] inline void fail_argument(const std::string &message) { throw Error(ONNXGAN_ERROR_ARGUMENT, message); }

}  // namespace onnxgan
#endif
