// The tiny-matrix kernels for the baseline target, and the choice of build for this CPU.
#include "ops/cpu/tiny_kernels_impl.h"
#include "ops/qr_retraction_algorithm.h"

MANTRA_TINY_DEFINE_KERNELS(kernels_baseline, "baseline", mantra::detail::kCholeskyQR2MaxLoss)

namespace mantra::detail::tiny {

static_assert(kCholeskyQR2MaxLoss == 0.1, "update the threshold in tiny_kernels_avx2.cpp too");

const Kernels& kernels() {
  static const Kernels& chosen = [] () -> const Kernels& {
#if defined(__GNUC__) && defined(__x86_64__)
    if (const Kernels* k = kernels_avx2(); k && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return *k;
#endif
    return kernels_baseline();
  }();
  return chosen;
}

}  // namespace mantra::detail::tiny
