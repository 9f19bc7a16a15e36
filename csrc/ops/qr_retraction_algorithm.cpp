#include "ops/qr_retraction_algorithm.h"

#include <c10/util/Exception.h>

#include <vector>

namespace mantra::detail {
namespace {

bool is_supported_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}
at::ScalarType compute_dtype(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16 ? at::kFloat : t; }

}  // namespace

at::Tensor to_batch3_rows_or_columns(const at::Tensor& X) {
  const auto compute = compute_dtype(X.scalar_type());
  const at::Tensor Xc = X.scalar_type() == compute ? X : X.to(compute);
  const at::Tensor X3 = Xc.reshape({-1, X.size(-2), X.size(-1)});
  return X3.is_contiguous() || X3.mT().is_contiguous() ? X3 : X3.contiguous();
}
at::Tensor to_batch3(const at::Tensor& X) { return to_batch3_rows_or_columns(X).contiguous(); }
at::Tensor from_batch3(const at::Tensor& X3, at::IntArrayRef shape, at::ScalarType dtype) {
  const at::Tensor X = X3.view(shape);
  return X.scalar_type() == dtype ? X : X.to(dtype);
}
std::vector<int64_t> qr_r_shape(at::IntArrayRef x_shape) {
  std::vector<int64_t> s(x_shape.begin(), x_shape.end());
  s[s.size() - 2] = s.back();
  return s;
}

void check_qr_retraction_argument(const at::Tensor& X, const char* op, const char* arg) {
  TORCH_CHECK_VALUE(X.defined(), op, ": argument '", arg, "' is an undefined tensor");
  TORCH_CHECK_VALUE(X.dim() >= 2, op, ": argument '", arg, "' must have at least 2 dimensions (..., n, k), got a ",
                    X.dim(), "-D tensor of shape ", X.sizes());
  TORCH_CHECK_VALUE(X.size(-2) >= X.size(-1), op, ": argument '", arg,
                    "' must be tall or square (..., n, k) with n >= k (transpose a wide matrix), got shape ",
                    X.sizes());
  TORCH_CHECK_VALUE(is_supported_dtype(X.scalar_type()), op, ": argument '", arg,
                    "' must be float32 or float64 (float16/bfloat16 are computed in float32), got ", X.scalar_type());
}

void check_qr_retraction_backward_arguments(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R,
                                            const char* op) {
  check_qr_retraction_argument(Q, op, "Q");
  TORCH_CHECK_VALUE(R.defined(), op, ": argument 'R' is an undefined tensor");
  const std::vector<int64_t> rs = qr_r_shape(Q.sizes());
  TORCH_CHECK_VALUE(R.sizes() == at::IntArrayRef(rs), op, ": argument 'R' must have shape ", at::IntArrayRef(rs),
                    " (the R factor of 'Q'), got ", R.sizes());
  TORCH_CHECK_VALUE(grad.defined(), op, ": argument 'grad' is an undefined tensor");
  TORCH_CHECK_VALUE(grad.sizes() == Q.sizes(), op, ": argument 'grad' must have the shape of 'Q' ", Q.sizes(),
                    ", got ", grad.sizes());
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{grad, "grad"}, {R, "R"}}) {
    TORCH_CHECK_VALUE(t.scalar_type() == Q.scalar_type(), op, ": argument '", name, "' must have the dtype of 'Q' (",
                      Q.scalar_type(), "), got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.device() == Q.device(), op, ": argument '", name, "' must be on the device of 'Q' (",
                      Q.device(), "), got ", t.device());
  }
}

void qr_householder_into(const at::Tensor& X3, const at::Tensor& rows, at::Tensor& Q3, at::Tensor& R3) {
  if (rows.numel() == 0) return;
  auto [Qh, Rh] = at::linalg_qr(X3.index_select(0, rows), "reduced");
  // Positive diag(R): flip the column of Q and row of R where it is negative (zero stays).
  const at::Tensor d = Rh.diagonal(0, -2, -1);
  const at::Tensor sign = at::where(d < 0, -at::ones_like(d), at::ones_like(d));
  Q3.index_copy_(0, rows, Qh * sign.unsqueeze(-2));
  R3.index_copy_(0, rows, Rh * sign.unsqueeze(-1));
}

std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_generic(const at::Tensor& X, int64_t* householder_count) {
  check_qr_retraction_argument(X, "mantra::qr_retraction", "X");
  if (householder_count) *householder_count = 0;
  const std::vector<int64_t> rs = qr_r_shape(X.sizes());
  if (X.numel() == 0) return {at::empty(X.sizes(), X.options()), at::zeros(rs, X.options())};
  const at::Tensor X3 = to_batch3(X);
  // CholeskyQR2 on the whole batch: pass 1 (R₁ = chol(XᵀX), Q₁ = X R₁⁻¹), pass 2 on Q₁.
  const at::Tensor G1 = at::matmul(X3.mT(), X3);
  const auto [R1, info1] = at::linalg_cholesky_ex(G1, /*upper=*/true, /*check_errors=*/false);
  const at::Tensor Q1 = at::linalg_solve_triangular(R1, X3, /*upper=*/true, /*left=*/false);
  const at::Tensor G2 = at::matmul(Q1.mT(), Q1);
  const at::Tensor loss = (G2 - at::eye(G2.size(-1), G2.options())).square().sum({-2, -1}).sqrt();
  const auto [R2, info2] = at::linalg_cholesky_ex(G2, /*upper=*/true, /*check_errors=*/false);
  // (solve_triangular returns column-major matrices; the results are contiguous, as Meta's)
  at::Tensor Q = at::linalg_solve_triangular(R2, Q1, /*upper=*/true, /*left=*/false).contiguous();
  at::Tensor R = at::matmul(R2, R1);  // upper triangular, positive diagonal
  // NaN loss (non-finite X, failed factorizations) compares false: Householder.
  const at::Tensor ok = info1.eq(0).logical_and_(info2.eq(0)).logical_and_(loss.le(kCholeskyQR2MaxLoss));
  // The branch is chosen per matrix; this reads the mask on the host (free on the CPU).
  const at::Tensor fallback = at::nonzero(ok.logical_not()).squeeze(-1);
  qr_householder_into(X3, fallback, Q, R);
  if (householder_count) *householder_count = fallback.numel();
  return {from_batch3(Q, X.sizes(), X.scalar_type()), from_batch3(R, rs, X.scalar_type())};
}

at::Tensor qr_retraction_backward_generic(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  check_qr_retraction_backward_arguments(grad, Q, R, "mantra::qr_retraction_backward");
  if (Q.numel() == 0) return at::zeros(Q.sizes(), Q.options());
  // X = QR, Qᵀ dQ = Ω skew, dQ = QΩ + (I − QQᵀ) dX R⁻¹ with Ω = L − Lᵀ, L the strictly lower
  // part of Qᵀ dX R⁻¹. Hence, with B = QᵀG:
  //   ∇X = [G + Q (tril₋₁(B − Bᵀ) − B)] R⁻ᵀ.
  const at::Tensor G3 = to_batch3(grad), Q3 = to_batch3(Q), R3 = to_batch3(R);
  const at::Tensor B = at::matmul(Q3.mT(), G3);
  const at::Tensor N = (B - B.mT()).tril(-1) - B;
  const at::Tensor M = at::baddbmm(G3, Q3, N);
  const at::Tensor gX = at::linalg_solve_triangular(R3.mT(), M, /*upper=*/false, /*left=*/false);
  return from_batch3(gX.contiguous(), Q.sizes(), Q.scalar_type());
}

}  // namespace mantra::detail
