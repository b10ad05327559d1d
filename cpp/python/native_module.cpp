// pybind11 binding of the native sampler, imported as onnxgan.runtime._native.
#include <pybind11/pybind11.h>

#include "onnxgan/sampler.h"

namespace py = pybind11;

PYBIND11_MODULE(_native, m) {
  m.doc() = "onnxgan native sampler (C++17, no third-party dependencies)";
  m.attr("__version__") = onnxgan_version();
}
