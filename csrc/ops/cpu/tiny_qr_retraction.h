// The QR retraction of batches of tiny matrices (n×k, k <= n <= 32) on the CPU: the algorithm
// of the CPU kernels (qr_retraction_algorithm.h: one CholeskyQR pass where the Gram matrix
// certifies it, two while ‖Q₁ᵀQ₁ − I‖_F <= kCholeskyQR2MaxLoss, the Householder branch of the
// general path for the matrices that fail; the rule of qr_retraction_rule.h) and its backward,
// run matrix by matrix in a thread's scratch, parallel over the batch, with no ATen/BLAS/LAPACK
// call per matrix. Square sizes 1 … 8, 16 and 32 have compile-time kernels; other shapes a
// runtime-size loop.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace mantra::detail {

// True when the tiny path serves X (or Q): a CPU tensor (..., n, k) with 1 <= k <= n <= 32.
bool tiny_qr_retraction_serves(const at::Tensor& X);

// Same contracts and errors as qr_retraction_factors_cpu_general / qr_retraction_backward_generic
// (`one_pass_count`, when given, receives the number of matrices done in one CholeskyQR pass).
std::tuple<at::Tensor, at::Tensor> tiny_qr_retraction_factors(const at::Tensor& X, int64_t* householder_count,
                                                              int64_t* one_pass_count = nullptr);
at::Tensor tiny_qr_retraction_backward(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R);

}  // namespace mantra::detail
