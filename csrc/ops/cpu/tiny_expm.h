// The matrix exponential of batches of tiny matrices (n <= 32) on the CPU: the algorithm of
// expm_algorithm.h (the same per-matrix plan of degree and squarings, the same evaluation
// schemes and their adjoint sweep), run matrix by matrix in a thread's scratch, parallel over
// the batch, with no ATen/BLAS call per matrix or per product. Sizes 1 … 8, 16 and 32 have
// compile-time kernels; other n <= 32 a runtime-size loop.
//
// Under autograd the trace is the plan alone ([plan]): the backward recomputes the forward in
// cache, which is cheaper here than writing and reading the intermediates.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace mantra::detail {

// True when the tiny path serves A: a CPU tensor (..., n, n) with 1 <= n <= 32.
bool tiny_expm_serves(const at::Tensor& A);

// The whole-op kernels of expm's operators on the tiny path (same contracts and errors as the
// *_generic ones in expm_algorithm.h).
at::Tensor tiny_expm_forward(const at::Tensor& A);
at::Tensor tiny_expm_backward(const at::Tensor& grad, const at::Tensor& A);
std::tuple<at::Tensor, std::vector<at::Tensor>> tiny_expm_traced(const at::Tensor& A);
at::Tensor tiny_expm_traced_backward(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace);

}  // namespace mantra::detail
