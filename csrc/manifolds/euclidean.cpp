#include "mantra/manifolds/euclidean.h"

namespace mantra::manifolds {

at::Tensor Euclidean::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  return G;
}

at::Tensor Euclidean::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction) const { return X + V; }

at::Tensor Euclidean::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_args("transport", X, {{Y, "Y"}, {V, "V"}});
  return V;
}

at::Tensor Euclidean::project(const at::Tensor& X) const {
  check_args("project", X);
  return X;
}

at::Tensor Euclidean::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  return at::randn(shape, options);
}

at::Tensor Euclidean::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  return at::zeros(shape, options);
}

std::string Euclidean::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  if (X.numel() && !at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  return "";
}

}  // namespace mantra::manifolds
