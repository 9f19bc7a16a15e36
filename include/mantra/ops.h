// mantra operators. Each is a PyTorch dispatcher operator (torch.ops.mantra.<name> in Python);
// these C++ entry points go through the dispatcher, so they get autograd and device dispatch.
#pragma once

#include <ATen/core/Tensor.h>

namespace mantra {

// Matrix exponential of every (n, n) matrix in A (shape (..., n, n)); float32/float64, and
// float16/bfloat16 computed in float32. Differentiable (backward: expm_backward).
at::Tensor expm(const at::Tensor& A);

// Gradient of <grad, expm(A)> with respect to A: the Fréchet derivative L(Aᵀ, grad).
at::Tensor expm_backward(const at::Tensor& grad, const at::Tensor& A);

// True when this build of libmantra has its CUDA kernels.
bool cuda_enabled();

}  // namespace mantra
