// CUDA kernels of the matrix exponential operators. For now the same scaling-and-squaring
// algorithm as the CPU kernels, its products on cuBLAS through ATen; the fused, sync-free
// kernels come with the CUDA issue. Compiled only in CUDA builds (MANTRA_CUDA).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/expm_algorithm.h"
#include "ops/kernel_calls.h"

namespace mantra {
namespace {

at::Tensor expm_cuda(const at::Tensor& A) {
  MANTRA_COUNT_KERNEL_CALL("expm.CUDA");
  const c10::cuda::CUDAGuard guard(A.device());
  return detail::expm_forward_generic(A);
}

at::Tensor expm_backward_cuda(const at::Tensor& grad, const at::Tensor& A) {
  MANTRA_COUNT_KERNEL_CALL("expm_backward.CUDA");
  const c10::cuda::CUDAGuard guard(A.device());
  return detail::expm_backward_generic(grad, A);
}

std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_cuda(const at::Tensor& A) {
  MANTRA_COUNT_KERNEL_CALL("_expm_traced.CUDA");
  const c10::cuda::CUDAGuard guard(A.device());
  return detail::expm_traced_generic(A);
}

at::Tensor expm_traced_backward_cuda(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace) {
  MANTRA_COUNT_KERNEL_CALL("_expm_traced_backward.CUDA");
  const c10::cuda::CUDAGuard guard(A.device());
  return detail::expm_traced_backward_generic(grad, A, trace);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CUDA, m) {
  m.impl("expm", &mantra::expm_cuda);
  m.impl("expm_backward", &mantra::expm_backward_cuda);
  m.impl("_expm_traced", &mantra::expm_traced_cuda);
  m.impl("_expm_traced_backward", &mantra::expm_traced_backward_cuda);
}
