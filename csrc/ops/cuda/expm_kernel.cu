// CUDA kernels of expm / expm_backward. For now the same scaling-and-squaring algorithm as the
// CPU kernel, its products on cuBLAS through ATen; the fused, sync-free kernels come with the
// CUDA issue. Compiled only in CUDA builds (MANTRA_CUDA).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/expm_algorithm.h"

namespace mantra {
namespace {

at::Tensor expm_cuda(const at::Tensor& A) {
  const c10::cuda::CUDAGuard guard(A.device());
  return detail::expm_forward_generic(A);
}

at::Tensor expm_backward_cuda(const at::Tensor& grad, const at::Tensor& A) {
  const c10::cuda::CUDAGuard guard(A.device());
  return detail::expm_backward_generic(grad, A);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CUDA, m) {
  m.impl("expm", &mantra::expm_cuda);
  m.impl("expm_backward", &mantra::expm_backward_cuda);
}
