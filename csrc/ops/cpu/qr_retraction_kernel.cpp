// CPU kernels of the QR retraction operators (qr_retraction_algorithm.h) on ATen's BLAS and
// LAPACK, and for n <= 32 their per-matrix form in cache (cpu/tiny_qr_retraction.h). "qr_retraction.householder" counts the matrices that took the Householder fallback.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/cpu/tiny_qr_retraction.h"
#include "ops/kernel_calls.h"
#include "ops/qr_retraction_algorithm.h"

namespace mantra {
namespace {

// True (and counted as "tiny_qr_retraction.CPU") when the tiny-matrix path serves X.
bool tiny(const at::Tensor& X) {
  if (!detail::tiny_qr_retraction_serves(X)) return false;
  MANTRA_COUNT_KERNEL_CALL("tiny_qr_retraction.CPU");
  return true;
}

std::tuple<at::Tensor, at::Tensor> factors(const at::Tensor& X) {
  int64_t householder = 0;
  auto result = tiny(X) ? detail::tiny_qr_retraction_factors(X, &householder)
                                                     : detail::qr_retraction_factors_generic(X, &householder);
  if (householder > 0) {
    static std::atomic<int64_t>& counter = detail::kernel_call_counter("qr_retraction.householder");
    counter.fetch_add(householder, std::memory_order_relaxed);
  }
  return result;
}

at::Tensor qr_retraction_cpu(const at::Tensor& X) {
  MANTRA_COUNT_KERNEL_CALL("qr_retraction.CPU");
  return std::get<0>(factors(X));
}

std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_cpu(const at::Tensor& X) {
  MANTRA_COUNT_KERNEL_CALL("_qr_retraction_factors.CPU");
  return factors(X);
}

at::Tensor qr_retraction_backward_cpu(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  MANTRA_COUNT_KERNEL_CALL("qr_retraction_backward.CPU");
  return tiny(Q) ? detail::tiny_qr_retraction_backward(grad, Q, R)
                                              : detail::qr_retraction_backward_generic(grad, Q, R);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("qr_retraction", &mantra::qr_retraction_cpu);
  m.impl("_qr_retraction_factors", &mantra::qr_retraction_factors_cpu);
  m.impl("qr_retraction_backward", &mantra::qr_retraction_backward_cpu);
}
