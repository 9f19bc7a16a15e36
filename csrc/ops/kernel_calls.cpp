// The kernel call counters (kernel_calls.h) and the private operator that reads them.
#include "ops/kernel_calls.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <map>
#include <memory>
#include <mutex>

namespace mantra::detail {
namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, std::unique_ptr<std::atomic<int64_t>>>& registry() {
  static auto* r = new std::map<std::string, std::unique_ptr<std::atomic<int64_t>>>();  // never destroyed
  return *r;
}

int64_t kernel_calls(c10::string_view name) {
  return kernel_call_counter(std::string(name)).load(std::memory_order_relaxed);
}
}  // namespace

std::atomic<int64_t>& kernel_call_counter(const std::string& name) {
  const std::lock_guard<std::mutex> lock(registry_mutex());
  auto& slot = registry()[name];
  if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
  return *slot;
}

}  // namespace mantra::detail

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  // Private (tests): how often the kernel "<op>.<dispatch key>" ran in this process.
  m.def("_kernel_calls(str name) -> int", &mantra::detail::kernel_calls);
}
