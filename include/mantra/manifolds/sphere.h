// The unit sphere S^{n-1} = {x ∈ R^n : ‖x‖ = 1} (points: the last dimension), and the oblique
// manifold (matrices with unit-norm columns), the product of spheres over the columns.
// Retractions: exp (great circles, with exact parallel transport) and projection (x+v)/‖x+v‖.
#pragma once

#include <mantra/manifolds/manifold.h>

namespace mantra::manifolds {

class Sphere : public Manifold {
 public:
  explicit Sphere(Retraction default_retraction = Retraction::Exp);
  std::string name() const override { return "Sphere"; }
  int64_t point_dims() const override { return point_dims_; }
  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override;
  at::Tensor project(const at::Tensor& X) const override;
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;

  // Parallel transport of U along the great circle t ↦ exp_X(tV), to t = 1.
  at::Tensor parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const;
  at::Tensor exp_parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const override {
    return parallel_transport(X, V, U);
  }

 protected:
  Sphere(int64_t axis, int64_t point_dims, Retraction default_retraction);
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
  at::Tensor dot(const at::Tensor& U, const at::Tensor& V) const;  // along the sphere axis, keepdim

  int64_t axis_;        // the dimension that holds one sphere's coordinates
  int64_t point_dims_;  // 1 (a vector) or 2 (a matrix of unit columns)
  Retraction default_retraction_;
};

class Oblique : public Sphere {
 public:
  explicit Oblique(Retraction default_retraction = Retraction::Exp);
  std::string name() const override { return "Oblique"; }
};

}  // namespace mantra::manifolds
