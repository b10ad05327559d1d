// Run-time kernel dispatch: the AVX2 kernel where it is compiled in (x86-64) and the CPU has
// AVX2 + FMA (+ F16C for fp16 weights); the portable kernel otherwise.
#include "error.h"
#include "kernel.h"

namespace onnxgan {

#ifdef ONNXGAN_HAVE_AVX2
const Kernel &avx2_kernel_impl();  // kernel_avx2.cpp

const Kernel *avx2_kernel(bool half) {
  __builtin_cpu_init();
  const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && (!half || __builtin_cpu_supports("f16c"));
  return ok ? &avx2_kernel_impl() : nullptr;
}
#else
const Kernel *avx2_kernel(bool) { return nullptr; }
#endif

const Kernel &select_kernel(int request, bool half) {
  switch (request) {
    case ONNXGAN_KERNEL_AUTO: {
      const Kernel *fast = avx2_kernel(half);
      return fast ? *fast : portable_kernel();
    }
    case ONNXGAN_KERNEL_PORTABLE: return portable_kernel();
    case ONNXGAN_KERNEL_AVX2:
      if (const Kernel *fast = avx2_kernel(half)) return *fast;
      fail_argument("the AVX2 kernel is not available here (needs an x86-64 build and a CPU with AVX2, FMA and F16C)");
    default: fail_argument("unknown kernel " + std::to_string(request) + " (0 auto, 1 portable, 2 avx2)");
  }
}

}  // namespace onnxgan
