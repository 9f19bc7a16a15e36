// CUDA kernels of mantra::modrelu / modrelu_backward: grid-stride elementwise passes of the
// scalar functions of modrelu_algorithm.h (half types computed in float32); the bias gradient
// is the row sum of g·∂h/∂b. Compiled only in CUDA builds (MANTRA_CUDA).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "ops/kernel_calls.h"
#include "ops/modrelu_algorithm.h"

namespace mantra {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535));
}

template <typename scalar_t>
__global__ void modrelu_forward_kernel(const scalar_t* z, const scalar_t* b, scalar_t* out, int64_t n, int64_t H) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    out[k] = static_cast<scalar_t>(detail::modrelu<acc_t>(static_cast<acc_t>(z[k]), static_cast<acc_t>(b[k % H])));
  }
}

// grad_z = g·∂h/∂z and the terms g·∂h/∂b (summed over rows afterwards).
template <typename scalar_t>
__global__ void modrelu_backward_kernel(const scalar_t* g, const scalar_t* h, scalar_t* grad_z, scalar_t* grad_b_terms,
                                        int64_t n) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const acc_t gk = static_cast<acc_t>(g[k]), hk = static_cast<acc_t>(h[k]);
    grad_z[k] = static_cast<scalar_t>(gk * detail::modrelu_dz(hk));
    grad_b_terms[k] = static_cast<scalar_t>(gk * detail::modrelu_db(hk));
  }
}

at::Tensor modrelu_cuda(const at::Tensor& z, const at::Tensor& bias) {
  MANTRA_COUNT_KERNEL_CALL("modrelu.CUDA");
  detail::check_modrelu_arguments(z, bias, "mantra::modrelu");
  const c10::cuda::CUDAGuard guard(z.device());
  const at::Tensor zc = z.contiguous(), bc = bias.contiguous();
  at::Tensor out = at::empty(z.sizes(), z.options());
  const int64_t n = z.numel(), H = bias.size(0);
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "mantra::modrelu", [&] {
    modrelu_forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        zc.const_data_ptr<scalar_t>(), bc.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, H);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> modrelu_backward_cuda(const at::Tensor& grad, const at::Tensor& result) {
  MANTRA_COUNT_KERNEL_CALL("modrelu_backward.CUDA");
  detail::check_modrelu_backward_arguments(grad, result, "mantra::modrelu_backward");
  const c10::cuda::CUDAGuard guard(result.device());
  const at::Tensor g = grad.contiguous(), h = result.contiguous();
  const int64_t n = result.numel(), H = result.size(-1);
  at::Tensor grad_z = at::empty(result.sizes(), result.options());
  if (n == 0) return {grad_z, at::zeros({H}, result.options())};
  // The bias terms in the compute dtype, summed in float32/float64 and rounded once.
  const auto acc_type = result.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor terms = at::empty(result.sizes(), result.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, result.scalar_type(), "mantra::modrelu_backward", [&] {
    modrelu_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), h.const_data_ptr<scalar_t>(), grad_z.mutable_data_ptr<scalar_t>(),
        terms.mutable_data_ptr<scalar_t>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  at::Tensor grad_b = terms.view({-1, H}).sum(0, /*keepdim=*/false, acc_type).to(result.scalar_type());
  return {grad_z, grad_b};
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CUDA, m) {
  m.impl("modrelu", &mantra::modrelu_cuda);
  m.impl("modrelu_backward", &mantra::modrelu_backward_cuda);
}
