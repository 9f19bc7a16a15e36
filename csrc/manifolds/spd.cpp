#include "mantra/manifolds/spd.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "manifolds/linalg.h"

namespace mantra::manifolds {

using linalg::sym;
using linalg::sym_funm;
using linalg::sym_funms;
using linalg::SymFunction;

namespace {
at::Tensor congruence(const at::Tensor& A, const at::Tensor& M) { return at::matmul(at::matmul(A, M), A); }  // A M A, A symmetric
double eps_of(const at::Tensor& X) {
  return X.scalar_type() == at::kDouble ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
}
// The eigenvalue floor below which an eigenvalue of S is rounding: n·eps·‖S‖_F (per matrix,
// no gradient), at least the smallest normal number.
at::Tensor rounding_floor(const at::Tensor& S, double at_least = 0.0) {
  return (at::linalg_matrix_norm(S.detach()) * (S.size(-1) * eps_of(S)))
      .clamp_min(at_least)
      .clamp_min(S.scalar_type() == at::kDouble ? 1e-300 : 1e-37);
}
// The cap on the exponent of the retraction's expm: e^cap·e^cap stays far from overflow.
double exp_cap(const at::Tensor& X) { return X.scalar_type() == at::kDouble ? 170.0 : 20.0; }
}  // namespace

SPD::SPD(SPDOptions options) : options_(options) {
  TORCH_CHECK_VALUE(options.min_eigenvalue >= 0 && std::isfinite(options.min_eigenvalue),
                    "SPD: argument 'min_eigenvalue' must be finite and >= 0, got ",
                    options.min_eigenvalue);
}

void SPD::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(shape.size() >= 2, name(), ": argument '", arg, "' must have at least 2 dimensions (..., n, n), got shape ",
                    shape);
  TORCH_CHECK_VALUE(shape[shape.size() - 1] == shape[shape.size() - 2], name(), ": argument '", arg,
                    "' must be square (..., n, n), got shape ", shape);
}

at::Tensor SPD::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  return sym(G);
}

at::Tensor SPD::egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const {
  check_args("egrad_to_rgrad", X, {{G, "G"}});
  return sym(at::matmul(at::matmul(X, sym(G)), X));
}

at::Tensor SPD::chart_vector(const at::Tensor& B, const at::Tensor& u) const {
  check_args("chart_vector", B, {{u, "u"}});
  const at::Tensor S = sym(B);
  return sym(congruence(sym_funm(S, SymFunction::SqrtFloor, rounding_floor(S)), sym(u)));
}

at::Tensor SPD::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction) const {
  check_shape(X.sizes(), "X");
  // The roots of X use its eigenvalues lifted to the rounding floor, and the result is lifted
  // too (project): a point whose smallest eigenvalue has rounded to ~0 or below comes back
  // positive definite, and every step lands positive definite in float32 and float64. The
  // exponent is capped (exp_cap) so that a long step stays finite.
  const at::Tensor S = sym(X);
  const auto roots = sym_funms(S, {SymFunction::SqrtFloor, SymFunction::InvSqrtFloor}, rounding_floor(S));
  const at::Tensor& half = roots[0];
  const at::Tensor& ihalf = roots[1];
  const at::Tensor cap = at::full({}, exp_cap(X), X.options());
  return project(congruence(half, sym_funm(sym(congruence(ihalf, sym(V))), SymFunction::ExpClamp, cap)));
}

at::Tensor SPD::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_args("transport", X, {{V, "V"}, {Y, "Y"}});
  try {
    return transport_unchecked(X, Y, V);
  } catch (const c10::Error&) {
    rethrow_naming_nonfinite("transport", {{X, "X"}, {Y, "Y"}, {V, "V"}});
  }
}

at::Tensor SPD::transport_unchecked(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  const auto roots = sym_funms(sym(X), {SymFunction::Sqrt, SymFunction::InvSqrt});
  const at::Tensor& half = roots[0];
  const at::Tensor& ihalf = roots[1];
  // (Y X⁻¹)^{1/2} = X^{1/2} M^{1/2} X^{-1/2} with M = X^{-1/2} Y X^{-1/2}.
  const at::Tensor Mh = sym_funm(sym(congruence(ihalf, Y)), SymFunction::Sqrt);
  const at::Tensor E = at::matmul(at::matmul(half, Mh), ihalf);
  return sym(at::matmul(at::matmul(E, sym(V)), E.mT()));
}

std::pair<at::Tensor, at::Tensor> SPD::retract_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U,
                                                         Retraction method) const {
  check_args("retract_transport", X, {{U, "U"}});
  resolve_retraction(method, "retract");  // exp is the only one
  check_args("retract", X, {{V, "V"}});
  // The retraction of retract_with and the transport along it from three eigendecompositions
  // (X's, W's and the projection's), not seven. Along exp_X(V), M = expm(W) with
  // W = X^{-1/2} V X^{-1/2}, so M^{1/2} = expm(W/2) comes from W's eigh. The transport uses the
  // retraction's floored roots of X (equal to the plain roots unless an eigenvalue of X is below
  // the rounding floor) and the capped exponent: uncapped, a long float32 step overflowed here
  // and the next step was NaN.
  try {
    const at::Tensor S = sym(X);
    const auto roots = sym_funms(S, {SymFunction::SqrtFloor, SymFunction::InvSqrtFloor}, rounding_floor(S));
    const at::Tensor& half = roots[0];
    const at::Tensor& ihalf = roots[1];
    const at::Tensor cap = at::full({}, exp_cap(X), X.options());
    const auto exps =
        sym_funms(sym(congruence(ihalf, sym(V))), {SymFunction::ExpClamp, SymFunction::ExpClampHalf}, cap);
    at::Tensor Y = project(congruence(half, exps[0]));
    const at::Tensor E = at::matmul(at::matmul(half, exps[1]), ihalf);
    return {Y, sym(at::matmul(at::matmul(E, sym(U)), E.mT()))};
  } catch (const c10::Error&) {
    rethrow_naming_nonfinite("retract", {{X, "X"}, {V, "V"}});
  }
}

at::Tensor SPD::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_args("inner", X, {{U, "U"}, {V, "V"}});
  const at::Tensor A = at::linalg_solve(X, U), B = at::linalg_solve(X, V);
  return sum_point(A * B.mT());  // tr(AB)
}

at::Tensor SPD::project(const at::Tensor& X) const {
  check_args("project", X);
  const at::Tensor bad = linalg::nonfinite_matrices(X);  // NaN out, not a lifted finite matrix
  const at::Tensor S = sym(X.masked_fill(bad, 0));
  return linalg::fill_nan(sym(sym_funm(S, SymFunction::ClampMin, rounding_floor(S, options_.min_eigenvalue))), bad);
}

at::Tensor SPD::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  const at::Tensor Q = linalg::qr_positive(at::randn(shape, options));
  std::vector<int64_t> ls(shape.begin(), shape.end() - 1);
  const at::Tensor lambda = (0.5 * at::randn(ls, options)).exp();
  return sym(at::matmul(Q * lambda.unsqueeze(-2), Q.mT()));
}

at::Tensor SPD::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  return at::eye(shape[shape.size() - 1], options).expand(shape).clone();
}

std::string SPD::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  std::ostringstream s;
  if (X.dim() < 2 || X.size(-1) != X.size(-2)) {
    s << "it must be square (..., n, n), got shape " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const at::Tensor Xd = X.to(at::kDouble);
  const double scale = std::max(1.0, Xd.abs().max().item<double>());
  const double asym = (Xd - Xd.mT()).abs().max().item<double>();
  if (asym > atol * scale) {
    s << "it is not symmetric: max |X − Xᵀ| = " << asym << " > atol·max(1, max|X|) = " << atol * scale;
    return s.str();
  }
  const double lmin = at::linalg_eigvalsh(sym(Xd)).min().item<double>();
  if (!(lmin > 0)) {
    s << "it is not positive definite: its smallest eigenvalue is " << lmin;
    return s.str();
  }
  return "";
}

at::Tensor SPD::log(const at::Tensor& X, const at::Tensor& Y) const {
  check_args("log", X, {{Y, "Y"}});
  const at::Tensor S = sym(X);
  const auto roots = sym_funms(S, {SymFunction::Sqrt, SymFunction::InvSqrt});
  return sym(congruence(roots[0], sym_funm(sym(congruence(roots[1], Y)), SymFunction::Log)));
}

at::Tensor SPD::distance(const at::Tensor& X, const at::Tensor& Y) const {
  check_args("distance", X, {{Y, "Y"}});
  const at::Tensor ihalf = sym_funm(sym(X), SymFunction::InvSqrt);
  const at::Tensor L = sym_funm(sym(congruence(ihalf, Y)), SymFunction::Log);
  // The Frobenius norm; the floor inside the root keeps its gradient finite (zero) at X = Y.
  const at::Tensor sq = (L * L).sum({-2, -1});
  const at::Tensor d = at::where(sq <= 1e-30, at::zeros_like(sq), sq.clamp_min(1e-30).sqrt());  // NaN stays NaN
  // Points off the manifold have no distance: NaN, not the distance of their symmetric parts.
  // Not positive definite already gives NaN (the root or log of a negative eigenvalue), a
  // matrix asymmetric beyond 1e-5·max(1, max|X|) (check_point's default) gives it here.
  auto symmetric = [](const at::Tensor& A) {
    const at::Tensor Ad = A.detach();
    return (Ad - Ad.mT()).abs().amax({-2, -1}) <= 1e-5 * Ad.abs().amax({-2, -1}).clamp_min(1);
  };
  return at::where(symmetric(X).logical_and(symmetric(Y)), d, at::full_like(d, std::numeric_limits<double>::quiet_NaN()));
}

}  // namespace mantra::manifolds
