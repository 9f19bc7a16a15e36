#include "mantra/manifolds/gl_plus.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "manifolds/linalg.h"
#include "mantra/ops.h"

namespace mantra::manifolds {

namespace {
int64_t checked_n(int64_t n) {
  TORCH_CHECK_VALUE(n >= 1, "GLPlus: argument 'n' must be at least 1, got ", n);
  return n;
}
double eps_of(const at::Tensor& X) {
  return X.scalar_type() == at::kDouble ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
}
// X expm(X⁻¹V): stays in GL+ since det expm(A) = e^{tr A} > 0. A = X⁻¹V is shortened to
// ‖A‖_F <= cap (5 in float32, 15 in float64), so that the condition number of expm(A), at
// most e^{2 cap}, stays far below 1/eps and the sign of its determinant survives rounding:
// every step lands in GL+. Shorter steps are unchanged.
// With `traceless`, A's trace is removed first (the exponential of SL(n)).
at::Tensor group_exp(const at::Tensor& X, const at::Tensor& V, bool traceless = false) {
  at::Tensor A = at::linalg_solve(X, V);
  if (traceless) {
    const at::Tensor mean = A.diagonal(0, -2, -1).mean(-1).unsqueeze(-1).unsqueeze(-1);
    A = A - mean * at::eye(A.size(-1), A.options());
  }
  const double cap = X.scalar_type() == at::kDouble ? 15.0 : 5.0;
  const at::Tensor norm = at::linalg_matrix_norm(A.detach()).unsqueeze(-1).unsqueeze(-1);
  const at::Tensor scale = at::where(norm > cap, cap / norm, at::ones_like(norm));
  return at::matmul(X, mantra::expm(A * scale));
}
}  // namespace

GLPlus::GLPlus(int64_t n, double min_singular_value)
    : FixedRank(checked_n(n), n, n), min_singular_value_(min_singular_value) {
  TORCH_CHECK_VALUE(min_singular_value >= 0 && std::isfinite(min_singular_value),
                    "GLPlus: argument 'min_singular_value' must be finite and >= 0, got ",
                    min_singular_value);
}

at::Tensor GLPlus::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  return G;
}

at::Tensor GLPlus::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_args("transport", X, {{V, "V"}, {Y, "Y"}});
  return V;
}

at::Tensor GLPlus::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  check_shape(X.sizes(), "X");
  if (method == Retraction::Exp) return group_exp(X, V);
  const at::Tensor Y = X + V;
  // Both branches are computed (no host sync); where() routes the gradient to the chosen one.
  const at::Tensor ok = std::get<0>(at::linalg_slogdet(Y.detach())) > 0;
  return at::where(ok.unsqueeze(-1).unsqueeze(-1), Y, group_exp(X, V));
}

at::Tensor GLPlus::project(const at::Tensor& X) const {
  check_args("project", X);
  const at::Tensor bad = linalg::nonfinite_matrices(X);  // NaN out, not a finite matrix
  const at::Tensor Xd = X.detach().masked_fill(bad, 0);
  auto [U, S, Vh] = at::linalg_svd(Xd, /*full_matrices=*/false);
  const int64_t n = S.size(-1);
  const at::Tensor floor =
      (S.select(-1, 0) * (n * eps_of(Xd))).clamp_min(min_singular_value_).clamp_min(
          Xd.scalar_type() == at::kDouble ? 1e-300 : 1e-37);
  at::Tensor s = at::maximum(S, floor.unsqueeze(-1));
  // det X < 0: reflect the smallest singular direction through 0, i.e. flip u_n and set σ_n to
  // the floor. The sign comes from det U det Vᵀ, which is also defined for singular X.
  const at::Tensor negative =
      std::get<0>(at::linalg_slogdet(U)) * std::get<0>(at::linalg_slogdet(Vh)) < 0;
  at::Tensor sign = at::ones_like(S);
  sign.select(-1, n - 1).copy_(at::where(negative, -at::ones_like(floor), at::ones_like(floor)));
  s.select(-1, n - 1).copy_(at::where(negative, floor, s.select(-1, n - 1)));
  const at::Tensor target = at::matmul(U * (sign * s).unsqueeze(-2), Vh);
  return linalg::fill_nan(X + (target - Xd), bad);  // value: target; derivative: the identity
}

at::Tensor GLPlus::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  at::Tensor X = FixedRank::random(shape, options);
  const at::Tensor negative = std::get<0>(at::linalg_slogdet(X)) < 0;
  X.select(-1, 0).mul_(at::where(negative, -at::ones_like(negative, X.options()), at::ones_like(negative, X.options()))
                           .unsqueeze(-1));
  return X;
}

std::string GLPlus::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  std::ostringstream s;
  if (X.dim() < 2 || X.size(-1) != X.size(-2) || X.size(-1) != rank()) {
    s << "it must have shape (..., " << rank() << ", " << rank() << "), got " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const at::Tensor sign = std::get<0>(at::linalg_slogdet(X.to(at::kDouble)));
  if ((sign == 0).any().item<bool>()) return "it is singular (det = 0)";
  if ((sign < 0).any().item<bool>()) return "its determinant is negative (GL+ needs det > 0)";
  return "";
}

namespace {
// Y / det(Y)^{1/n} for det Y > 0 (differentiable through slogdet).
at::Tensor unit_det(const at::Tensor& Y) {
  const at::Tensor logdet = std::get<1>(at::linalg_slogdet(Y));
  return Y * at::exp(-logdet / Y.size(-1)).unsqueeze(-1).unsqueeze(-1);
}
}  // namespace

SL::SL(int64_t n) : GLPlus(n) {}

at::Tensor SL::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  const at::Tensor N = at::linalg_inv(X).mT();  // the normal X⁻ᵀ
  const at::Tensor coef = sum_point(N * G) / sum_point(N * N);
  return G - coef.unsqueeze(-1).unsqueeze(-1) * N;
}

at::Tensor SL::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_args("transport", X, {{V, "V"}, {Y, "Y"}});
  return proj_tangent(Y, V);
}

at::Tensor SL::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  check_shape(X.sizes(), "X");
  if (method == Retraction::Exp) return unit_det(group_exp(X, V, /*traceless=*/true));
  const at::Tensor Y = X + V;
  const at::Tensor ok = std::get<0>(at::linalg_slogdet(Y.detach())) > 0;
  return unit_det(at::where(ok.unsqueeze(-1).unsqueeze(-1), Y, group_exp(X, V, /*traceless=*/true)));
}

at::Tensor SL::project(const at::Tensor& X) const { return unit_det(GLPlus::project(X)); }

at::Tensor SL::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  return unit_det(GLPlus::random(shape, options));
}

std::string SL::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = GLPlus::check_point(X, atol); !why.empty()) return why;
  if (X.numel() == 0) return "";
  const at::Tensor logdet = std::get<1>(at::linalg_slogdet(X.to(at::kDouble)));
  const double worst = logdet.abs().max().item<double>();
  if (worst > X.size(-1) * atol) {
    std::ostringstream s;
    s << "its determinant is not 1 (|log det| = " << worst << " > n·atol = " << X.size(-1) * atol << ")";
    return s.str();
  }
  return "";
}

}  // namespace mantra::manifolds
