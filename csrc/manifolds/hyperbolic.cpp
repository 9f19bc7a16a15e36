#include "mantra/manifolds/hyperbolic.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <limits>
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
// The largest distance from the origin a Lorentz point may have: x_0² = cosh²(r) must stay
// finite (in float32 cosh(40)² ≈ 1e34; in float64 cosh(300)² ≈ 1e260).
double lorentz_max_radius(const at::Tensor& X) { return X.scalar_type() == at::kDouble ? 300.0 : 40.0; }
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
  check_args("proj_tangent", X, {{G, "G"}});
  return G + minkowski(X, G) * X;
}

at::Tensor Lorentz::egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const {
  check_args("egrad_to_rgrad", X, {{G, "G"}});
  const at::Tensor JG = at::cat({-time_part(G), spatial(G)}, -1);
  return JG + minkowski(X, JG) * X;
}

at::Tensor Lorentz::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_args("inner", X, {{U, "U"}, {V, "V"}});
  return minkowski(U, V).squeeze(-1);
}

at::Tensor Lorentz::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  check_shape(X.sizes(), "X");
  if (method == Retraction::Projection) return project(X + V);
  // exp_x(v) = cosh‖v‖_L x + sinh‖v‖_L v/‖v‖_L, for the tangent part of v.
  const at::Tensor Vt = V + minkowski(X, V) * X;
  const at::Tensor t = safe_norm(minkowski(Vt, Vt));
  // A step longer than the largest representable radius is shortened to it along the same
  // geodesic (cosh t · x would overflow); project() then clamps the radius and removes the
  // drift of repeated steps (a no-op to first order).
  const at::Tensor tc = t.clamp_max(lorentz_max_radius(X));
  return project(tc.cosh() * X + (sinh_over(tc) * (tc / t)) * Vt);
}

at::Tensor Lorentz::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_args("transport", X, {{V, "V"}, {Y, "Y"}});
  // 1 − ⟨x, y⟩_L = 1 + cosh d >= 2: no cancellation. The final projection removes rounding.
  const at::Tensor P = V + minkowski(Y, V) / (1 - minkowski(X, Y)) * (X + Y);
  return P + minkowski(Y, P) * Y;
}

at::Tensor Lorentz::project(const at::Tensor& X) const {
  check_args("project", X);
  // Spatial norm at most sinh(r_max), so that x_0² stays finite (see lorentz_max_radius).
  const double max_norm = std::sinh(lorentz_max_radius(X));
  at::Tensor xs = spatial(X);
  // ‖x_{1:}‖ through a scaled copy: the plain sum of squares overflows for long steps.
  const at::Tensor m = xs.detach().abs().amax(-1, true).clamp_min(1e-30);
  const at::Tensor norm = m * safe_norm(dot_last(xs / m, xs / m));
  // Scaled by min(1, max_norm/‖x‖) (not a where: inductor's C++ codegen fails on that form).
  xs = xs * (max_norm / norm).clamp_max(1.0);
  // + 0·x_0: x_0 is recomputed, but a NaN/Inf there must still come out as NaN.
  return at::cat({(1 + dot_last(xs, xs)).sqrt() + 0 * time_part(X), xs}, -1);
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
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
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
  check_args("distance", X, {{Y, "Y"}});
  const at::Tensor D = X - Y;
  const at::Tensor sq = minkowski(D, D).squeeze(-1);  // 4 sinh²(d/2) on the hyperboloid
  // (sq <= tiny) is false for NaN, so a NaN distance stays NaN (sq > tiny would zero it).
  return at::where(sq <= 1e-30, at::zeros_like(sq), 2 * at::asinh(0.5 * safe_norm(sq)));
}

// ------------------------------------------------------------------ Poincaré ball

at::Tensor PoincareBall::conformal_factor(const at::Tensor& X) {
  // The clamp keeps points at the boundary finite; `0 * d` makes an infinite X give NaN
  // (1 − inf would clamp to a finite factor and hide it).
  const at::Tensor d = dot_last(X, X);
  return 2 / ((1 - d).clamp_min(X.scalar_type() == at::kDouble ? 1e-300 : 1e-37) + 0 * d);
}

at::Tensor PoincareBall::mobius_add(const at::Tensor& X, const at::Tensor& Y) {
  // ((1 + 2⟨x,y⟩ + ‖y‖²) x + (1 − ‖x‖²) y) / (1 + 2⟨x,y⟩ + ‖x‖²‖y‖²), with both coefficients
  // and the denominator written as sums of non-negative terms (s = ⟨x,y⟩ + ‖x‖‖y‖ >= 0):
  // 1 + 2⟨x,y⟩ + b² = (b − a)² + (1 − a²) + 2s and 1 + 2⟨x,y⟩ + a²b² = (1 − ab)² + 2s. Near the
  // boundary with y ≈ −x the plain form cancels to 0 or below (inf/NaN in float32).
  const at::Tensor xy = dot_last(X, Y), xx = dot_last(X, X), yy = dot_last(Y, Y);
  const at::Tensor a = safe_norm(xx), b = safe_norm(yy);
  const at::Tensor s = (xy + a * b).clamp_min(0);
  const at::Tensor one_xx = (1 - a) * (1 + a);
  const at::Tensor cx = (b - a) * (b - a) + one_xx + 2 * s;
  const at::Tensor den = (1 - a * b) * (1 - a * b) + 2 * s;
  return (cx * X + one_xx * Y) / den;
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
  check_args("proj_tangent", X, {{G, "G"}});
  return G;
}

at::Tensor PoincareBall::egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const {
  check_args("egrad_to_rgrad", X, {{G, "G"}});
  const at::Tensor lam = conformal_factor(X);
  return G / (lam * lam);
}

at::Tensor PoincareBall::inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const {
  check_args("inner", X, {{U, "U"}, {V, "V"}});
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
  check_args("transport", X, {{V, "V"}, {Y, "Y"}});
  return conformal_factor(X) / conformal_factor(Y) * gyration(Y, -X, V);
}

at::Tensor PoincareBall::project(const at::Tensor& X) const {
  check_args("project", X);
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

std::string PoincareBall::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
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
  check_args("distance", X, {{Y, "Y"}});
  const at::Tensor D = X - Y;
  const at::Tensor sq = dot_last(D, D) * (0.25 * conformal_factor(X) * conformal_factor(Y));  // sinh²(d/2)
  const at::Tensor sqz = sq.squeeze(-1);
  const at::Tensor d = at::where(sqz <= 1e-30, at::zeros_like(sqz), 2 * at::asinh(safe_norm(sqz)));  // NaN stays NaN
  // A point outside the open ball has no distance: NaN, not the finite value of the clamped λ.
  const at::Tensor inside = (dot_last(X, X) < 1).logical_and(dot_last(Y, Y) < 1).squeeze(-1);
  return at::where(inside, d, at::full_like(d, std::numeric_limits<double>::quiet_NaN()));
}

at::Tensor lorentz_to_poincare(const at::Tensor& X) { return spatial(X) / (1 + time_part(X)); }

at::Tensor poincare_to_lorentz(const at::Tensor& P) {
  const at::Tensor pp = dot_last(P, P);
  return at::cat({1 + pp, 2 * P}, -1) / (1 - pp);
}

}  // namespace mantra::manifolds
