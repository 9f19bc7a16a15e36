// How often each device kernel of the mantra operators ran, read back by the private operator
// mantra::_kernel_calls(name) (torch.ops.mantra._kernel_calls in Python). Tests use it to prove
// which kernel the dispatcher reached, e.g. that expm under autograd runs the CPU kernel of
// mantra::_expm_traced. Names are "<op>.<dispatch key>", e.g. "_expm_traced.CPU".
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace mantra::detail {

// The counter of `name`, created at zero on first use; it lives as long as the library.
std::atomic<int64_t>& kernel_call_counter(const std::string& name);

}  // namespace mantra::detail

// Counts one call of the kernel `name` (a string literal); one relaxed atomic add per call.
#define MANTRA_COUNT_KERNEL_CALL(name)                                                          \
  do {                                                                                          \
    static std::atomic<int64_t>& mantra_kernel_counter_ = ::mantra::detail::kernel_call_counter(name); \
    mantra_kernel_counter_.fetch_add(1, std::memory_order_relaxed);                             \
  } while (0)
