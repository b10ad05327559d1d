// pybind11 binding of the native sampler's C ABI, imported as onnxgan.runtime._native
// (interface: docs/onnx-contract.md). Inputs are checked (dtype, exact shape) before any work; the
// GIL is released while the kernel runs. Library failures raise ValueError with its message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "onnxgan/sampler.h"

namespace py = pybind11;

namespace {

void check(onnxgan_status status) {
  if (status == ONNXGAN_ERROR_MEMORY) throw std::bad_alloc();
  if (status == ONNXGAN_ERROR_NONFINITE) {  // Sampler.generate turns it into its one-line CheckFailed
    PyErr_SetString(PyExc_FloatingPointError, onnxgan_last_error());
    throw py::error_already_set();
  }
  if (status != ONNXGAN_OK) throw py::value_error(onnxgan_last_error());
}

std::string shape_text(const py::array &array) {
  std::string text = "(";
  for (py::ssize_t i = 0; i < array.ndim(); ++i) text += (i ? ", " : "") + std::to_string(array.shape(i));
  return text + (array.ndim() == 1 ? ",)" : ")");
}

int precision_code(const std::string &name) {
  if (name == "auto") return ONNXGAN_PRECISION_AUTO;
  if (name == "float32") return ONNXGAN_PRECISION_FLOAT32;
  if (name == "float16") return ONNXGAN_PRECISION_FLOAT16;
  throw py::value_error("precision must be 'auto', 'float32' or 'float16', got '" + name + "'");
}

int kernel_code(const std::string &name) {
  if (name == "auto") return ONNXGAN_KERNEL_AUTO;
  if (name == "portable") return ONNXGAN_KERNEL_PORTABLE;
  if (name == "avx2") return ONNXGAN_KERNEL_AVX2;
  if (name == "avx512") return ONNXGAN_KERNEL_AVX512;
  throw py::value_error("kernel must be 'auto', 'portable', 'avx2' or 'avx512', got '" + name + "'");
}

class Model {
 public:
  static Model open_file(const std::string &path, int threads, const std::string &precision, const std::string &kernel) {
    const onnxgan_options options{threads, precision_code(precision), kernel_code(kernel)};
    onnxgan_model *handle = nullptr;
    check(onnxgan_open_file(path.c_str(), &options, &handle));
    return Model(handle);
  }

  static Model open_bytes(const py::bytes &data, int threads, const std::string &precision, const std::string &kernel) {
    const onnxgan_options options{threads, precision_code(precision), kernel_code(kernel)};
    const std::string_view view(data);
    onnxgan_model *handle = nullptr;
    check(onnxgan_open_memory(view.data(), view.size(), &options, &handle));
    return Model(handle);
  }

  const onnxgan_info &info() const { return info_; }
  py::tuple image_shape() const { return py::make_tuple(info_.channels, info_.height, info_.width); }

  // z float32 (N, latent_dim), labels int64 (N,) or None -> float32 (N, C, H, W)
  py::array_t<float> generate(const py::array &z_in, const py::object &labels_in) {
    if (!z_in.dtype().is(py::dtype::of<float>()))
      throw py::value_error("z must be float32, got " + std::string(py::str(z_in.dtype())));
    if (z_in.ndim() != 2 || z_in.shape(1) != info_.latent_dim)
      throw py::value_error("z must have shape (N, " + std::to_string(info_.latent_dim) + "), got " + shape_text(z_in));
    const auto z = py::array_t<float, py::array::c_style>::ensure(z_in);
    const int64_t n = z.shape(0);
    py::array_t<int64_t, py::array::c_style> labels;  // kept alive while the kernel reads it
    const int64_t *label_data = nullptr;
    if (!labels_in.is_none()) {
      const py::array raw = py::array::ensure(labels_in);
      if (!raw || !raw.dtype().is(py::dtype::of<int64_t>()))
        throw py::value_error("labels must be an int64 array");
      if (raw.ndim() != 1 || raw.shape(0) != n)
        throw py::value_error("labels must have shape (" + std::to_string(n) + ",), got " + shape_text(raw));
      labels = py::array_t<int64_t, py::array::c_style>::ensure(raw);
      label_data = labels.data();
    }
    py::array_t<float> out({py::ssize_t(n), py::ssize_t(info_.channels), py::ssize_t(info_.height), py::ssize_t(info_.width)});
    float *out_data = out.mutable_data();
    const size_t out_size = size_t(out.nbytes());
    onnxgan_status status;
    {
      py::gil_scoped_release release;
      status = onnxgan_generate(handle_.get(), n, z.data(), label_data, out_data, out_size);
    }
    check(status);
    return out;
  }

 private:
  explicit Model(onnxgan_model *handle) : handle_(handle, onnxgan_close) { check(onnxgan_get_info(handle, &info_)); }
  std::shared_ptr<onnxgan_model> handle_;
  onnxgan_info info_{};
};

py::array_t<float> latent(int64_t n, int64_t latent_dim, uint64_t seed, double truncation) {
  if (n < 0 || latent_dim <= 0)
    throw py::value_error("need n >= 0 and latent_dim > 0, got n=" + std::to_string(n) + ", latent_dim=" + std::to_string(latent_dim));
  py::array_t<float> out({py::ssize_t(n), py::ssize_t(latent_dim)});
  check(onnxgan_latent(n, latent_dim, seed, truncation, out.mutable_data(), size_t(out.nbytes())));
  return out;
}

const char *kernel_name(int kernel) {
  return kernel == ONNXGAN_KERNEL_AVX512 ? "avx512" : kernel == ONNXGAN_KERNEL_AVX2 ? "avx2" : "portable";
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "onnxgan native sampler (C++17, no third-party dependencies): MLP and conv generators on the CPU";
  m.attr("__version__") = onnxgan_version();
  m.attr("MAX_THREADS") = ONNXGAN_MAX_THREADS;
  m.def("latent", &latent, py::arg("n"), py::arg("latent_dim"), py::arg("seed"), py::arg("truncation") = 0.0,
        "The latent RNG splitmix64-boxmuller-v1: float32 (n, latent_dim), bit for bit runtime.latent.latent; "
        "truncation 0 (none) or >= 0.1 (truncated-resample-v1).");
  py::class_<Model>(m, "Model", "A generator (MLP or conv) loaded by the native library.")
      .def(py::init(&Model::open_file), py::arg("path"), py::arg("threads") = 0, py::arg("precision") = "auto",
           py::arg("kernel") = "auto",
           "Load model.onnx. threads 0 = the usable cores (at most 8); precision 'auto' (as the file stores the "
           "weights; fp32 on the portable kernel), 'float32' or 'float16' (weights stored as fp16, fp32 arithmetic); "
           "kernel 'auto', 'portable', 'avx2' or 'avx512'. ValueError if unusable.")
      .def_static("from_bytes", &Model::open_bytes, py::arg("data"), py::arg("threads") = 0,
                  py::arg("precision") = "auto", py::arg("kernel") = "auto", "Load a model from its bytes.")
      .def_property_readonly("latent_dim", [](const Model &self) { return self.info().latent_dim; })
      .def_property_readonly("image_shape", &Model::image_shape, "(C, H, W)")
      .def_property_readonly("num_classes", [](const Model &self) { return self.info().num_classes; })
      .def_property_readonly("threads", [](const Model &self) { return self.info().threads; })
      .def_property_readonly("value_range", [](const Model &self) { return py::make_tuple(self.info().value_min, self.info().value_max); })
      .def_property_readonly("precision", [](const Model &self) { return self.info().precision == ONNXGAN_PRECISION_FLOAT16 ? "float16" : "float32"; })
      .def_property_readonly("kernel", [](const Model &self) { return kernel_name(self.info().kernel); })
      .def("generate", &Model::generate, py::arg("z"), py::arg("labels") = py::none(),
           "z float32 (N, latent_dim), labels int64 (N,) for conditional models -> images float32 (N, C, H, W).");
}
