// Run-time kernel dispatch: the widest SIMD kernel that is compiled in (x86-64) and that the CPU
// supports (AVX-512F, else AVX2 + FMA + F16C), the portable kernel otherwise.
#include "error.h"
#include "kernel.h"

#ifdef ONNXGAN_HAVE_X86_KERNELS
#include <cpuid.h>
#endif

namespace onnxgan {

#ifdef ONNXGAN_HAVE_X86_KERNELS
const Kernel &avx2_kernel_impl();    // kernel_avx2.cpp
const Kernel &avx512_kernel_impl();  // kernel_avx512.cpp

// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no name for it.
bool has_f16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
}

const Kernel *simd_kernel(onnxgan_kernel id) {
  __builtin_cpu_init();  // the OS-enabled features: AVX state saved by the kernel, not only CPUID bits
  const bool fma = __builtin_cpu_supports("fma") && has_f16c();
  if (id == ONNXGAN_KERNEL_AVX512 && fma && __builtin_cpu_supports("avx512f")) return &avx512_kernel_impl();
  if (id == ONNXGAN_KERNEL_AVX2 && fma && __builtin_cpu_supports("avx2")) return &avx2_kernel_impl();
  return nullptr;
}
#else
const Kernel *simd_kernel(onnxgan_kernel) { return nullptr; }
#endif

const Kernel &select_kernel(int request) {
  switch (request) {
    case ONNXGAN_KERNEL_AUTO:
      for (onnxgan_kernel id : {ONNXGAN_KERNEL_AVX512, ONNXGAN_KERNEL_AVX2})
        if (const Kernel *fast = simd_kernel(id)) return *fast;
      return portable_kernel();
    case ONNXGAN_KERNEL_PORTABLE: return portable_kernel();
    case ONNXGAN_KERNEL_AVX2:
    case ONNXGAN_KERNEL_AVX512:
      if (const Kernel *fast = simd_kernel(onnxgan_kernel(request))) return *fast;
      fail_argument(std::string("the ") + (request == ONNXGAN_KERNEL_AVX2 ? "AVX2" : "AVX-512") +
                    " kernel is not available here (it needs an x86-64 build and a CPU with those instructions)");
    default: fail_argument("unknown kernel " + std::to_string(request) + " (0 auto, 1 portable, 2 avx2, 3 avx512)");
  }
}

}  // namespace onnxgan
