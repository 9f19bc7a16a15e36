#include "mantra/manifolds/euclidean.h"

namespace mantra::manifolds {

at::Tensor Euclidean::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", "Euclidean.proj_tangent");
  return G;
}

at::Tensor Euclidean::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction) const { return X + V; }

at::Tensor Euclidean::transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const {
  check_same_shape(X, "X", V, "V", "Euclidean.transport");
  return V;
}

at::Tensor Euclidean::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  return at::randn(shape, options);
}

at::Tensor Euclidean::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  return at::zeros(shape, options);
}

std::string Euclidean::check_point(const at::Tensor& X, double) const {
  if (!X.defined()) return "the tensor is undefined";
  if (X.numel() && !at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  return "";
}

}  // namespace mantra::manifolds
