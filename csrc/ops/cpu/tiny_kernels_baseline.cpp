// The tiny-matrix kernels for the baseline target, and the choice of build for this CPU.
#include "ops/cpu/tiny_kernels_impl.h"

MANTRA_TINY_DEFINE_KERNELS(kernels_baseline, "baseline")

namespace mantra::detail::tiny {

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
