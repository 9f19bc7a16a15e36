// CPU kernels of the matrix exponential operators: the scaling-and-squaring algorithm
// (expm_algorithm.h) on ATen's BLAS, for exactly skew matrices where it pays the
// eigendecomposition route (expm_skew.h, chosen per matrix), and for n <= 32 the per-matrix
// form of scaling and squaring in cache (cpu/tiny_expm.h).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/cpu/tiny_expm.h"
#include "ops/expm_algorithm.h"
#include "ops/kernel_calls.h"

namespace mantra {
namespace {

// True (and counted as "tiny_expm.CPU") when the tiny-matrix path serves A.
bool tiny(const at::Tensor& A) {
  if (!detail::tiny_expm_serves(A)) return false;
  MANTRA_COUNT_KERNEL_CALL("tiny_expm.CPU");
  return true;
}

at::Tensor expm_cpu(const at::Tensor& A) {
  MANTRA_COUNT_KERNEL_CALL("expm.CPU");
  return tiny(A) ? detail::tiny_expm_forward(A) : detail::expm_forward_generic(A, /*skew_route=*/true);
}

at::Tensor expm_backward_cpu(const at::Tensor& grad, const at::Tensor& A) {
  MANTRA_COUNT_KERNEL_CALL("expm_backward.CPU");
  return tiny(A) ? detail::tiny_expm_backward(grad, A) : detail::expm_backward_generic(grad, A, /*skew_route=*/true);
}

std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_cpu(const at::Tensor& A) {
  MANTRA_COUNT_KERNEL_CALL("_expm_traced.CPU");
  return tiny(A) ? detail::tiny_expm_traced(A) : detail::expm_traced_generic(A, /*skew_route=*/true);
}

at::Tensor expm_traced_backward_cpu(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace) {
  MANTRA_COUNT_KERNEL_CALL("_expm_traced_backward.CPU");
  return tiny(A) ? detail::tiny_expm_traced_backward(grad, A, trace)
                                      : detail::expm_traced_backward_generic(grad, A, trace);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("expm", &mantra::expm_cpu);
  m.impl("expm_backward", &mantra::expm_backward_cpu);
  m.impl("_expm_traced", &mantra::expm_traced_cpu);
  m.impl("_expm_traced_backward", &mantra::expm_traced_backward_cpu);
}
