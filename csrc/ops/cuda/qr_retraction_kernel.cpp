// CUDA registration of the QR retraction: for now the ATen algorithm (cuBLAS/cuSOLVER); the
// per-matrix branch choice reads one mask on the host. A fused kernel is the CUDA issue's.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "ops/qr_retraction_algorithm.h"

namespace {
std::tuple<at::Tensor, at::Tensor> factors_cuda(const at::Tensor& X) {
  return mantra::detail::qr_retraction_factors_generic(X, nullptr);
}
at::Tensor qr_retraction_cuda(const at::Tensor& X) { return std::get<0>(factors_cuda(X)); }
}  // namespace

TORCH_LIBRARY_IMPL(mantra, CUDA, m) {
  m.impl("qr_retraction", &qr_retraction_cuda);
  m.impl("_qr_retraction_factors", &factors_cuda);
  m.impl("qr_retraction_backward", &mantra::detail::qr_retraction_backward_generic);
}
