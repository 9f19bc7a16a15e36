// mantra operators. Each is a PyTorch dispatcher operator (torch.ops.mantra.<name> in Python);
// these C++ entry points go through the dispatcher, so they get autograd and device dispatch.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace mantra {

// Matrix exponential of every (n, n) matrix in A (shape (..., n, n)); float32/float64, and
// float16/bfloat16 computed in float32. Differentiable: under autograd the forward keeps its
// intermediates and the backward is their adjoint sweep (the gradient expm_backward computes,
// without recomputing the forward); changing A in place before backward raises. Batches of
// n <= 32 run per matrix in cache on the CPU (same plan and schemes; their backward recomputes
// the forward in cache instead of keeping it).
at::Tensor expm(const at::Tensor& A);

// Gradient of <grad, expm(A)> with respect to A: the Fréchet derivative L(Aᵀ, grad). grad has
// the shape, dtype and device of A.
at::Tensor expm_backward(const at::Tensor& grad, const at::Tensor& A);

// The QR retraction: the Q factor of the reduced QR of every tall matrix in X (..., n, k),
// n >= k, with diag(R) > 0. CholeskyQR2 per matrix where it is accurate (both Cholesky factors
// exist and ‖Q₁ᵀQ₁ − I‖_F <= 0.1, i.e. κ(X) up to about 1.3e3 in float32, 3e7 in float64),
// Householder QR otherwise; batches of n <= 32 run per matrix in cache on the CPU. float32/
// float64 (float16/bfloat16 computed in float32). Differentiable (backward:
// qr_retraction_backward); rank-deficient X gives an orthonormal Q and a non-finite gradient.
at::Tensor qr_retraction(const at::Tensor& X);

// Gradient with respect to X of <grad, Q(X)> from the factors Q (..., n, k) and R (..., k, k)
// of X = QR: [grad + Q (tril₋₁(B − Bᵀ) − B)] R⁻ᵀ with B = Qᵀ·grad.
at::Tensor qr_retraction_backward(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R);

// The matrix-normal operators matrix_normal_sample and matrix_normal_linear are declared with
// the Bayesian layers, in <mantra/bayes/matrix_normal.h>.

// modReLU(z, bias) = sign(z)·max(|z| + bias, 0) for z (..., H), bias (H,), as torch evaluates
// that formula (NaN in z or bias gives NaN). float32/float64 (half/bfloat16 computed in
// float32). Differentiable in both arguments (backward: modrelu_backward).
at::Tensor modrelu(const at::Tensor& z, const at::Tensor& bias);

// Gradients (z, bias) of <grad, result> where result = modrelu(z, bias): they depend on the
// result alone (∂/∂z = 1 where result ≠ 0, else 0; ∂/∂bias = sign(result); NaN where result is
// NaN).
std::tuple<at::Tensor, at::Tensor> modrelu_backward(const at::Tensor& grad, const at::Tensor& result);

// The orthogonal-RNN recurrence over a whole sequence (expRNN):
//   hidden[t] = modrelu(input[t] + hidden[t-1]·recurrentᵀ, bias),  hidden[-1] = h0.
// input (T, N, H) is the projected input W_in·x_t (+ its bias) for every step, h0 (N, H),
// recurrent (H, H), bias (H). Returns hidden (T, N, H). float32/float64 (half/bfloat16 computed
// in float32); NaN/Inf in any argument propagate as in torch's ops. Differentiable in all four
// arguments (backward: orthogonal_rnn_backward).
at::Tensor orthogonal_rnn(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                          const at::Tensor& bias);

// Backpropagation through time of orthogonal_rnn from the hidden states it returned: the
// gradients (input, h0, recurrent, bias) of <grad_hidden, hidden>.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias);

// True when this build of libmantra has its CUDA kernels.
bool cuda_enabled();

}  // namespace mantra
