#include "mantra/manifolds/hyperbolic.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>

namespace mantra::manifolds {

namespace {
at::Tensor dot_last(const at::Tensor& U, const at::Tensor& V) { return (U * V).sum(-1, true); }
// sqrt of a squared norm, floored so its gradient stays finite at 0 (as in sphere.cpp); below
// the floor the maps that use it are flat in the norm to O(norm²).
at::Tensor safe_norm(const at::Tensor& squared) { return squared.clamp_min(1e-30).sqrt(); }
// sinh(t)/t and tanh(t)/t for t >= 0: Taylor polynomials near 0, where the quotients' autograd
// derivatives cancel; the other branch sees a clamped t, so neither produces inf.
at::Tensor sinh_over(const at::Tensor& t) {
  const at::Tensor s = t * t;
  const at::Tensor poly = 1 + s * (1.0 / 6 + s * (1.0 / 120 + s * (1.0 / 5040 + s * (1.0 / 362880))));
  const at::Tensor tc = t.clamp_min(0.1);
  return at::where(t < 0.1, poly, tc.sinh() / tc);
}
at::Tensor tanh_over(const at::Tensor& t) {
  const at::Tensor s = t * t;
  const at::Tensor poly =
      1 + s * (-1.0 / 3 + s * (2.0 / 15 + s * (-17.0 / 315 + s * (62.0 / 2835 + s * (-1382.0 / 155925)))));
  const at::Tensor tc = t.clamp_min(0.05);
  return at::where(t < 0.05, poly, tc.tanh() / tc);
}
at::Tensor spatial(const at::Tensor& X) { return X.narrow(-1, 1, X.size(-1) - 1); }
at::Tensor time_part(const at::Tensor& X) { return X.narrow(-1, 0, 1); }
double ball_eps(const at::Tensor& X) { return X.scalar_type() == at::kDouble ? 1e-10 : 1e-5; }
}  // namespace

// ------------------------------------------------------------------ Lorentz

at::Tensor Lorentz::minkowski(const at::Tensor& U, const at::Tensor& V) {
  return dot_last(U, V) - 2 * time_part(U) * time_part(V);
}

void Lorentz::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(!shape.empty() && shape.back() >= 2, name(), ": argument '", arg,
                    "' must have a last dimension of size d + 1 >= 2, got shape ", shape);
}

at::Tensor Lorentz::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", name() + ".proj_tangent");
  check_shape(X.sizes(), "X");
  return G + minkowski(X, G) * X;
}

at::Tensor Lorentz::egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", name() + ".egrad_to_rgrad");
  check_shape(X.sizes(), "X");
  const at::Tensor JG = at::cat({-time_part(G), spatial(G)}, -1);
  return JG + minkowski(X, JG) * X;
}

at::Tensor Lorentz::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_same_shape(X, "X", U, "U", name() + ".inner");
  check_same_shape(X, "X", V, "V", name() + ".inner");
  return minkowski(U, V).squeeze(-1);
}

at::Tensor Lorentz::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  check_shape(X.sizes(), "X");
  if (method == Retraction::Projection) return project(X + V);
  // exp_x(v) = cosh‖v‖_L x + sinh‖v‖_L v/‖v‖_L, for the tangent part of v.
  const at::Tensor Vt = V + minkowski(X, V) * X;
  const at::Tensor t = safe_norm(minkowski(Vt, Vt));
  // project() removes the drift of repeated steps; a no-op to first order.
  return project(t.cosh() * X + sinh_over(t) * Vt);
}

at::Tensor Lorentz::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_same_shape(X, "X", V, "V", name() + ".transport");
  check_same_shape(X, "X", Y, "Y", name() + ".transport");
  check_shape(X.sizes(), "X");
  // 1 − ⟨x, y⟩_L = 1 + cosh d >= 2: no cancellation. The final projection removes rounding.
  const at::Tensor P = V + minkowski(Y, V) / (1 - minkowski(X, Y)) * (X + Y);
  return P + minkowski(Y, P) * Y;
}

at::Tensor Lorentz::project(const at::Tensor& X) const {
  check_shape(X.sizes(), "X");
  const at::Tensor xs = spatial(X);
  return at::cat({(1 + dot_last(xs, xs)).sqrt(), xs}, -1);
}

at::Tensor Lorentz::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  return project(at::randn(shape, options));
}

at::Tensor Lorentz::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  at::Tensor X = at::zeros(shape, options);
  X.select(-1, 0).fill_(1);
  return X;
}

std::string Lorentz::check_point(const at::Tensor& X, double atol) const {
  if (!X.defined()) return "the tensor is undefined";
  std::ostringstream s;
  if (X.dim() < 1 || X.size(-1) < 2) {
    s << "its last dimension must have size d + 1 >= 2, got shape " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const at::Tensor Xd = X.to(at::kDouble);
  const double x0 = time_part(Xd).min().item<double>();
  if (!(x0 > 0)) {
    s << "its time coordinate x_0 is " << x0 << " (the upper sheet needs x_0 > 0)";
    return s.str();
  }
  const at::Tensor err = (minkowski(Xd, Xd) + 1).abs() / (time_part(Xd) * time_part(Xd)).clamp_min(1);
  const double e = err.max().item<double>();
  if (e > atol) {
    s << "⟨x, x⟩_L differs from −1 by " << e << "·max(1, x_0²) > atol = " << atol;
    return s.str();
  }
  return "";
}

at::Tensor Lorentz::distance(const at::Tensor& X, const at::Tensor& Y) const {
  check_same_shape(X, "X", Y, "Y", name() + ".distance");
  check_shape(X.sizes(), "X");
  const at::Tensor D = X - Y;
  const at::Tensor sq = minkowski(D, D).squeeze(-1);  // 4 sinh²(d/2) on the hyperboloid
  return at::where(sq > 1e-30, 2 * at::asinh(0.5 * safe_norm(sq)), at::zeros_like(sq));
}

// ------------------------------------------------------------------ Poincaré ball

at::Tensor PoincareBall::conformal_factor(const at::Tensor& X) {
  return 2 / (1 - dot_last(X, X)).clamp_min(X.scalar_type() == at::kDouble ? 1e-300 : 1e-37);
}

at::Tensor PoincareBall::mobius_add(const at::Tensor& X, const at::Tensor& Y) {
  const at::Tensor xy = dot_last(X, Y), xx = dot_last(X, X), yy = dot_last(Y, Y);
  return ((1 + 2 * xy + yy) * X + (1 - xx) * Y) / (1 + 2 * xy + xx * yy);
}

at::Tensor PoincareBall::gyration(const at::Tensor& U, const at::Tensor& V, const at::Tensor& W) {
  // Ungar's closed form of ⊖(u ⊕ v) ⊕ (u ⊕ (v ⊕ w)), curvature −1.
  const at::Tensor uw = dot_last(U, W), vw = dot_last(V, W), uv = dot_last(U, V), uu = dot_last(U, U), vv = dot_last(V, V);
  const at::Tensor A = -uw * vv + vw + 2 * uv * vw;
  const at::Tensor B = -vw * uu - uw;
  const at::Tensor D = 1 + 2 * uv + uu * vv;
  return W + 2 * (A * U + B * V) / D;
}

void PoincareBall::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(!shape.empty() && shape.back() >= 1, name(), ": argument '", arg,
                    "' must have a last dimension of size d >= 1, got shape ", shape);
}

at::Tensor PoincareBall::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", name() + ".proj_tangent");
  return G;
}

at::Tensor PoincareBall::egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", name() + ".egrad_to_rgrad");
  const at::Tensor lam = conformal_factor(X);
  return G / (lam * lam);
}

at::Tensor PoincareBall::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_same_shape(X, "X", U, "U", name() + ".inner");
  check_same_shape(X, "X", V, "V", name() + ".inner");
  const at::Tensor lam = conformal_factor(X);
  return (lam * lam * dot_last(U, V)).squeeze(-1);
}

at::Tensor PoincareBall::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  check_shape(X.sizes(), "X");
  if (method == Retraction::Projection) return project(X + V);
  // exp_x(v) = x ⊕ tanh(λ_x ‖v‖ / 2) v/‖v‖ = x ⊕ (λ_x/2) tanhc(λ_x ‖v‖ / 2) v.
  const at::Tensor half_lam = 0.5 * conformal_factor(X);
  const at::Tensor t = safe_norm(dot_last(V, V));
  return project(mobius_add(X, half_lam * tanh_over(half_lam * t) * V));
}

at::Tensor PoincareBall::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_same_shape(X, "X", V, "V", name() + ".transport");
  check_same_shape(X, "X", Y, "Y", name() + ".transport");
  return conformal_factor(X) / conformal_factor(Y) * gyration(Y, -X, V);
}

at::Tensor PoincareBall::project(const at::Tensor& X) const {
  check_shape(X.sizes(), "X");
  const double max_norm = 1 - ball_eps(X);
  const at::Tensor norm = safe_norm(dot_last(X, X));
  return at::where(norm > max_norm, X * (max_norm / norm), X);
}

at::Tensor PoincareBall::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  std::vector<int64_t> s(shape.begin(), shape.end());
  s.back() += 1;
  return project(lorentz_to_poincare(Lorentz().random(s, options)));
}

at::Tensor PoincareBall::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  return at::zeros(shape, options);
}

std::string PoincareBall::check_point(const at::Tensor& X, double) const {
  if (!X.defined()) return "the tensor is undefined";
  std::ostringstream s;
  if (X.dim() < 1 || X.size(-1) < 1) {
    s << "its last dimension must have size d >= 1, got shape " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const double n2 = dot_last(X.to(at::kDouble), X.to(at::kDouble)).max().item<double>();
  if (!(n2 < 1)) {
    s << "its norm is " << std::sqrt(n2) << " (the open unit ball needs < 1)";
    return s.str();
  }
  return "";
}

at::Tensor PoincareBall::distance(const at::Tensor& X, const at::Tensor& Y) const {
  check_same_shape(X, "X", Y, "Y", name() + ".distance");
  check_shape(X.sizes(), "X");
  const at::Tensor D = X - Y;
  const at::Tensor sq = dot_last(D, D) * (0.25 * conformal_factor(X) * conformal_factor(Y));  // sinh²(d/2)
  const at::Tensor sqz = sq.squeeze(-1);
  return at::where(sqz > 1e-30, 2 * at::asinh(safe_norm(sqz)), at::zeros_like(sqz));
}

at::Tensor lorentz_to_poincare(const at::Tensor& X) { return spatial(X) / (1 + time_part(X)); }

at::Tensor poincare_to_lorentz(const at::Tensor& P) {
  const at::Tensor pp = dot_last(P, P);
  return at::cat({1 + pp, 2 * P}, -1) / (1 - pp);
}

}  // namespace mantra::manifolds
