// Euclidean space: every tensor is a point and its tangent space is the whole space. Each
// entry counts as its own point (point_dims() == 0), so the metric is the entrywise product
// and Riemannian Adam's "one second moment per point" is Adam's entrywise one.
#pragma once

#include <mantra/manifolds/manifold.h>

namespace mantra::manifolds {

class Euclidean : public Manifold {
 public:
  std::string name() const override { return "Euclidean"; }
  int64_t point_dims() const override { return 0; }
  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override { return {Retraction::Exp}; }
  at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const override;
  at::Tensor project(const at::Tensor& X) const override;
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;

 protected:
  bool accepts_reduced_precision() const override { return true; }
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
};

}  // namespace mantra::manifolds
