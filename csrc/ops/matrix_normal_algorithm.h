// The matrix-normal operators written with ATen operations, so they run on any device:
//   W = M + Ā·E·B̄ᵀ                                   (matrix_normal_sample)
//   O = X·M + s ⊙ (E·B̄ᵀ) (+ bias),  s_i = ‖(X·Ā)_i‖  (matrix_normal_linear)
// with Ā = tril(A), B̄ = tril(B): only the lower triangles of A and B are read. The products with
// a triangular factor recurse on halves of the factor (tril_mm and friends), so each costs about
// half of a GEMM; the elementwise parts are a hook (Elementwise) that the CPU kernel replaces by one fused loop.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace mantra::detail {

// Argument checks, one helper per op (shapes, dtypes, devices; `op` names the operator).
void check_matrix_normal_sample_arguments(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                                          const at::Tensor& E, const char* op);
void check_matrix_normal_linear_arguments(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A,
                                          const at::Tensor& B, const at::Tensor& E,
                                          const std::optional<at::Tensor>& bias, const char* op);
// Value checks (they read the data, so the device kernels call them, never the Meta kernels):
// no NaN in any argument, positive diagonals of the Cholesky factors A and B.
void check_no_nan(const at::Tensor& t, const char* op, const char* arg);
void check_positive_diagonal(const at::Tensor& L, const char* op, const char* arg);

// Products with triangular factors (2-D tensors of one dtype; L is square, only tril(L) read):
at::Tensor tril_mm(const at::Tensor& L, const at::Tensor& X);                  // tril(L)·X
at::Tensor mm_tril(const at::Tensor& X, const at::Tensor& L);                  // X·tril(L)
// X·tril(L)ᵀ, added to `base` (same shape as the result) when it is given.
at::Tensor mm_tril_t(const at::Tensor& X, const at::Tensor& L, const std::optional<at::Tensor>& base);
at::Tensor tril_t_mm(const at::Tensor& L, const at::Tensor& X);                // tril(L)ᵀ·X
at::Tensor tril_of_mm_nt(const at::Tensor& X, const at::Tensor& Y);            // tril(X·Yᵀ)
at::Tensor tril_of_mm_tn(const at::Tensor& X, const at::Tensor& Y);            // tril(Xᵀ·Y)

// The elementwise parts of matrix_normal_linear, replaceable per device.
struct MatrixNormalElementwise {
  // out ← out + s ⊙ F (row-scaled), s_i = ‖P_i‖; returns s (N,).
  at::Tensor (*scale_add)(at::Tensor& out, const at::Tensor& P, const at::Tensor& F);
  // From G (N, m), F (N, m), P (N, n), s (N,): dF = s ⊙ G and dP = (Σ_j G_ij F_ij / s_i)·P_i
  // (0 where s_i = 0).
  std::tuple<at::Tensor, at::Tensor> (*scale_backward)(const at::Tensor& G, const at::Tensor& F, const at::Tensor& P,
                                                       const at::Tensor& s);
};
const MatrixNormalElementwise& aten_elementwise();

// Whole-op kernels (inputs of any floating dtype; half/bfloat16 computed in float32 and cast back).
// The traced forwards also return what the backward reuses.
std::tuple<at::Tensor, at::Tensor> matrix_normal_sample_traced_generic(const at::Tensor& M, const at::Tensor& A,
                                                                       const at::Tensor& B, const at::Tensor& E);
// (grad_A, grad_B, grad_E) of <G, W> from T = Ā·E (the trace); grad_E is an empty (0,) tensor
// unless `grad_E` (the noise seldom needs one, and it costs half a GEMM).
std::tuple<at::Tensor, at::Tensor, at::Tensor> matrix_normal_sample_backward_generic(
    const at::Tensor& grad, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E, const at::Tensor& T,
    bool grad_E);
// (O, P = X·Ā, s, F = E·B̄ᵀ).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> matrix_normal_linear_traced_generic(
    const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E,
    const std::optional<at::Tensor>& bias, const MatrixNormalElementwise& ew);
// (grad_X, grad_M, grad_A, grad_B, grad_E, grad_bias) of <G, O> from the trace (P, s, F);
// grad_X and grad_E are empty (0,) tensors unless asked for.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
matrix_normal_linear_backward_generic(const at::Tensor& grad, const at::Tensor& X, const at::Tensor& M,
                                      const at::Tensor& A, const at::Tensor& B, const at::Tensor& E,
                                      const at::Tensor& P, const at::Tensor& s, const at::Tensor& F, bool grad_X,
                                      bool grad_E, const MatrixNormalElementwise& ew);

}  // namespace mantra::detail
