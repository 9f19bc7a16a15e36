// CPU kernels of expm / expm_backward: the scaling-and-squaring algorithm on ATen's BLAS.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/expm_algorithm.h"

namespace mantra {
namespace {

at::Tensor expm_cpu(const at::Tensor& A) {
  return detail::expm_forward_generic(A);
}

at::Tensor expm_backward_cpu(const at::Tensor& grad, const at::Tensor& A) {
  return detail::expm_backward_generic(grad, A);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("expm", &mantra::expm_cpu);
  m.impl("expm_backward", &mantra::expm_backward_cpu);
}
