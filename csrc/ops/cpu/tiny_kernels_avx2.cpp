// The tiny-matrix kernels built for AVX2+FMA (x86-64 with GCC/Clang), used only where the CPU
// has both (tiny_kernels_baseline.cpp). Only the standard headers the kernels need come before
// the target pragma, and the kernels have internal linkage, so no AVX2 code leaks into other
// functions of the library.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ops/cpu/tiny_kernels.h"

#if defined(__GNUC__) && defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#include "ops/cpu/tiny_kernels_impl.h"

MANTRA_TINY_DEFINE_KERNELS(kernels_avx2_build, "avx2+fma")

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace mantra::detail::tiny {
const Kernels* kernels_avx2() { return &kernels_avx2_build(); }
}  // namespace mantra::detail::tiny

#else
namespace mantra::detail::tiny {
const Kernels* kernels_avx2() { return nullptr; }
}  // namespace mantra::detail::tiny
#endif
