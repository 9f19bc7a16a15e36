#include "mantra/manifolds/sphere.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>

namespace mantra::manifolds {

namespace {
// sin(t)/t with its limit 1 at t = 0 (at::sinc is the normalized sin(πx)/(πx)).
at::Tensor sin_over(const at::Tensor& t) { return at::sinc(t / M_PI); }
// ‖V‖ from ‖V‖², floored at 1e-15 so its gradient stays finite at V = 0; below the floor the
// maps below are flat in ‖V‖ to O(‖V‖²), so the floor changes nothing that can be seen.
at::Tensor safe_norm(const at::Tensor& squared) { return squared.clamp_min(1e-30).sqrt(); }
}  // namespace

Sphere::Sphere(Retraction default_retraction) : Sphere(-1, 1, default_retraction) {}

Sphere::Sphere(int64_t axis, int64_t point_dims, Retraction default_retraction)
    : axis_(axis), point_dims_(point_dims), default_retraction_(default_retraction) {
  TORCH_CHECK_VALUE(default_retraction == Retraction::Exp || default_retraction == Retraction::Projection ||
                        default_retraction == Retraction::Default,
                    "Sphere: argument 'default_retraction' must be exp or projection, got ",
                    to_string(default_retraction));
  if (default_retraction_ == Retraction::Default) default_retraction_ = Retraction::Exp;
}

Oblique::Oblique(Retraction default_retraction) : Sphere(-2, 2, default_retraction) {}

std::vector<Retraction> Sphere::retractions() const {
  if (default_retraction_ == Retraction::Projection) return {Retraction::Projection, Retraction::Exp};
  return {Retraction::Exp, Retraction::Projection};
}

at::Tensor Sphere::dot(const at::Tensor& U, const at::Tensor& V) const { return (U * V).sum(axis_, true); }

at::Tensor Sphere::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  return G - X * dot(X, G);
}

at::Tensor Sphere::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  if (method == Retraction::Projection) return project(X + V);
  // exp_X(V) = cos‖V‖ X + sin‖V‖ V/‖V‖, written with sinc so that V = 0 is smooth.
  const at::Tensor t = safe_norm(dot(V, V));
  at::Tensor Y = at::cos(t) * X + sin_over(t) * V;
  // Renormalize: removes the O(u·steps) drift of repeated steps; a no-op to first order.
  return Y / dot(Y, Y).sqrt();
}

at::Tensor Sphere::parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const {
  // With t = ‖V‖: P(U) = U + ⟨V,U⟩ ((cos t − 1)/t² V − (sin t / t) X); (cos t − 1)/t² = −sinc²(t/2)/2.
  const at::Tensor t = safe_norm(dot(V, V));
  const at::Tensor vu = dot(V, U);
  const at::Tensor half = sin_over(t * 0.5);
  return U - vu * (0.5 * half * half * V + sin_over(t) * X);
}

at::Tensor Sphere::project(const at::Tensor& X) const {
  check_args("project", X);
  return X / dot(X, X).sqrt().clamp_min(X.scalar_type() == at::kDouble ? 1e-300 : 1e-30);
}

void Sphere::check_shape(at::IntArrayRef shape, const char* arg) const {
  Manifold::check_shape(shape, arg);
  TORCH_CHECK_VALUE(shape[shape.size() + axis_] >= 1, name(), ": argument '", arg,
                    "' needs at least one coordinate per sphere, got shape ", shape);
}

at::Tensor Sphere::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  // A normalized Gaussian is uniform on the sphere.
  return project(at::randn(shape, options));
}

at::Tensor Sphere::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  at::Tensor X = at::zeros(shape, options);
  X.select(axis_, 0).fill_(1);
  return X;
}

std::string Sphere::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  if (X.dim() < point_dims_) {
    std::ostringstream s;
    s << "it must have at least " << point_dims_ << " dimensions, got shape " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const double err = (dot(X, X).sqrt() - 1).abs().max().item<double>();
  if (err > atol) {
    std::ostringstream s;
    s << (axis_ == -1 ? "its norm" : "the norm of a column") << " differs from 1 by " << err << " > atol = " << atol;
    return s.str();
  }
  return "";
}

}  // namespace mantra::manifolds
