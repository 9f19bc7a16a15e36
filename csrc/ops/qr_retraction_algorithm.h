// The QR retraction Q(X): the Q factor of the reduced QR of a tall X (..., n, k), n >= k, with
// diag(R) > 0, and its reverse mode. Written with ATen operations, shared by the device
// kernels.
//
// Forward, per matrix of the batch: CholeskyQR2 (two passes of R = chol(XᵀX), Q = X R⁻¹; BLAS-3
// only) where it is accurate, Householder QR (LAPACK geqrf/orgqr through at::linalg_qr, with the
// signs fixed) otherwise. The choice: the first pass loses orthogonality as
// ‖Q₁ᵀQ₁ − I‖ ≈ κ(X)²·u, so that measured loss estimates the condition number for free (Q₁ᵀQ₁
// is the second pass's Gram matrix). CholeskyQR2 is kept when both Cholesky factorizations
// succeed and ‖Q₁ᵀQ₁ − I‖_F <= kCholeskyQR2MaxLoss = 0.1, i.e. estimated κ(X) <= about
// (0.1/u)^½ ≈ 1.3e3 in float32 and 3e7 in float64; the second pass then starts from a Q₁ of
// condition number <= 1.05 and ends orthogonal to rounding. At a retraction point X + V with V
// tangent the Gram matrix is I + VᵀV, so the fast branch serves every ‖V‖ <= 30 (float32).
//
// The CPU kernels (cpu/qr_retraction_kernel.cpp on BLAS/LAPACK, cpu/tiny_qr_retraction.h for
// n <= 32) stop after the first pass where the Gram matrix certifies it accurate: scaled to unit
// diagonal it is within δ <= kCholeskyQROnePassMaxDelta = 0.6 of I (a Gershgorin or Frobenius
// bound, O(k²)), so κ(XD)² <= 4 and one pass is as orthogonal as two, within 4×
// (qr_retraction_rule.h). At a retraction point X + V (V tangent at a frame) the off-diagonal
// of C is at most that of VᵀV, so δ <= ‖V‖_F² and every step with ‖V‖_F <= 0.77 takes one pass. The
// generic ATen composition below (the CUDA kernel, and the reference) always takes both passes.
//
// Rank-deficient (or non-finite) X fails the test and takes the Householder branch: Q is still
// orthonormal (its columns past the rank complete the frame, not unique), R has (near-)zero
// diagonal entries, and the backward, which solves with R, returns non-finite values there.
#pragma once

#include <ATen/ATen.h>

#include "mantra/ops.h"  // qr_retraction, qr_retraction_backward (the C++ entries)
#include "ops/qr_retraction_rule.h"  // the thresholds

#include <tuple>
#include <vector>

namespace mantra {

namespace detail {

// Private operator mantra::_qr_retraction_factors: (Q, R) with X = QR, diag(R) > 0 (the forward
// of qr_retraction under autograd, which keeps R for the backward).
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors(const at::Tensor& X);

// Validation (messages name `op` and the argument).
void check_qr_retraction_argument(const at::Tensor& X, const char* op, const char* arg);
void check_qr_retraction_backward_arguments(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R,
                                            const char* op);

// Whole-op kernels on (..., n, k) tensors of any floating dtype (half/bfloat16 in float32).
// `householder_count`, when given, receives the number of matrices that took the fallback.
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_generic(const at::Tensor& X, int64_t* householder_count);
at::Tensor qr_retraction_backward_generic(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R);

// The CPU kernels for the matrices the tiny path does not serve (cpu/qr_retraction_kernel.cpp):
// per matrix on BLAS/LAPACK, with the one-pass rule; `one_pass_count`, when given, receives the
// number of matrices done in one CholeskyQR pass. (The generic kernels where ATen has no BLAS.)
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_cpu_general(const at::Tensor& X, int64_t* householder_count,
                                                                     int64_t* one_pass_count);
at::Tensor qr_retraction_backward_cpu_general(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R);

// Pieces shared with the tiny-matrix CPU path (cpu/tiny_qr_retraction.h):
// (..., n, k) in any floating dtype <-> contiguous (B, n, k) in the compute dtype; the shape of R.
at::Tensor to_batch3(const at::Tensor& X);
// The same, but without the copy also where each matrix is column-major in a packed batch (what
// linalg.qr returns, and what X + V keeps with such an X): for kernels that read both.
at::Tensor to_batch3_rows_or_columns(const at::Tensor& X);
at::Tensor from_batch3(const at::Tensor& X3, at::IntArrayRef shape, at::ScalarType dtype);
std::vector<int64_t> qr_r_shape(at::IntArrayRef x_shape);
// The Householder branch for the matrices `rows` (int64 indices) of X3 (B, n, k): their Q and R
// (diag(R) >= 0) written into Q3 and R3.
void qr_householder_into(const at::Tensor& X3, const at::Tensor& rows, at::Tensor& Q3, at::Tensor& R3);

// The end of a per-matrix CPU kernel: the Householder branch for the matrices whose code in
// `branch` is `householder`, the counts (fallbacks, and codes equal to `one_pass`) and (Q, R)
// in the shape and dtype of X.
template <typename Code>
std::tuple<at::Tensor, at::Tensor> finish_qr_branches(const at::Tensor& X, const at::Tensor& X3, at::Tensor& Q3,
                                                      at::Tensor& R3, const std::vector<Code>& branch,
                                                      Code householder, Code one_pass, int64_t* householder_count,
                                                      int64_t* one_pass_count) {
  std::vector<int64_t> fallback;
  int64_t ones = 0;
  for (size_t i = 0; i < branch.size(); ++i) {
    if (branch[i] == householder) fallback.push_back(static_cast<int64_t>(i));
    ones += branch[i] == one_pass;
  }
  if (one_pass_count) *one_pass_count = ones;
  if (householder_count) *householder_count = static_cast<int64_t>(fallback.size());
  if (!fallback.empty()) qr_householder_into(X3, at::tensor(fallback, at::TensorOptions().dtype(at::kLong)), Q3, R3);
  return {from_batch3(Q3, X.sizes(), X.scalar_type()), from_batch3(R3, qr_r_shape(X.sizes()), X.scalar_type())};
}

}  // namespace detail
}  // namespace mantra
