// Hyperbolic space H^d (curvature −1) in two models, points on the last dimension:
//  - Lorentz: the hyperboloid {x ∈ R^{d+1} : ⟨x, x⟩_L = −1, x_0 > 0} with the Minkowski form
//    ⟨u, v⟩_L = −u_0 v_0 + Σ_{i≥1} u_i v_i as metric on its tangent spaces {v : ⟨x, v⟩_L = 0}.
//  - PoincareBall: the open unit ball {‖x‖ < 1} with the conformal metric λ_x² ⟨u, v⟩,
//    λ_x = 2 / (1 − ‖x‖²); every vector is tangent.
// Both: retractions exp (geodesics, with parallel transport) and projection (project(x + v)),
// and the geodesic distance. lorentz_to_poincare / poincare_to_lorentz are the isometries.
// Precision: hyperboloid coordinates grow like e^r at distance r from the origin, so Lorentz
// distances between far points carry an absolute error of about eps·e^{2r}; the ball keeps
// points within 1 − eps of the boundary (see project()), i.e. within about log(2/eps) of 0.
#pragma once

#include <mantra/manifolds/manifold.h>

namespace mantra::manifolds {

class Hyperbolic : public Manifold {
 public:
  int64_t point_dims() const override { return 1; }
  std::vector<Retraction> retractions() const override { return {Retraction::Exp, Retraction::Projection}; }
  // The geodesic distance (shape: the batch dimensions); its gradient is finite (0) at X = Y.
  virtual at::Tensor distance(const at::Tensor& X, const at::Tensor& Y) const = 0;
};

class Lorentz : public Hyperbolic {
 public:
  std::string name() const override { return "Lorentz"; }
  // g + ⟨x, g⟩_L x: orthogonal in the Minkowski form.
  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  // proj(J g), J = diag(−1, 1, …, 1): the tangent vector whose Minkowski pairing with ξ is gᵀξ.
  at::Tensor egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const override;
  // Parallel transport along the geodesic from X to Y: u + ⟨y, u⟩_L / (1 − ⟨x, y⟩_L) (x + y).
  at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const override;
  at::Tensor inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const override;
  // Recomputes x_0 = sqrt(1 + ‖x_{1:}‖²).
  at::Tensor project(const at::Tensor& X) const override;
  // project() of a Gaussian x_{1:}.
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;  // (1, 0, …)
  // x_0 > 0 and |⟨x, x⟩_L + 1| <= atol·max(1, x_0²) (the rounding of ⟨x, x⟩_L grows like x_0²).
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;
  // 2 asinh(‖x − y‖_L / 2): arccosh(−⟨x, y⟩_L) without its cancellation near 0.
  at::Tensor distance(const at::Tensor& X, const at::Tensor& Y) const override;
  // ⟨u, v⟩_L along the last dimension, keepdim.
  static at::Tensor minkowski(const at::Tensor& U, const at::Tensor& V);

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
};

class PoincareBall : public Hyperbolic {
 public:
  std::string name() const override { return "PoincareBall"; }
  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;  // the identity
  // G / λ_x².
  at::Tensor egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const override;
  // Parallel transport along the geodesic from X to Y: (λ_x / λ_y) gyr[y, −x] u.
  at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const override;
  at::Tensor inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const override;
  // Scales the norm down to at most 1 − eps, eps = 1e-5 (float32 and below) or 1e-10
  // (float64): 1 − ‖x‖² keeps about eps_machine / eps relative accuracy there.
  at::Tensor project(const at::Tensor& X) const override;
  // The image of Lorentz::random under the isometry.
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;  // 0
  // ‖x‖ < 1 (atol is not used: the ball is open).
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;
  // 2 asinh(‖x − y‖ / sqrt((1 − ‖x‖²)(1 − ‖y‖²))).
  at::Tensor distance(const at::Tensor& X, const at::Tensor& Y) const override;

  // Möbius addition x ⊕ y and the gyration gyr[u, v] w (linear in w).
  static at::Tensor mobius_add(const at::Tensor& X, const at::Tensor& Y);
  static at::Tensor gyration(const at::Tensor& U, const at::Tensor& V, const at::Tensor& W);
  // λ_x = 2 / (1 − ‖x‖²), keepdim.
  static at::Tensor conformal_factor(const at::Tensor& X);

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
};

// The isometries between the models: p = x_{1:} / (1 + x_0) and x = (1 + ‖p‖², 2p) / (1 − ‖p‖²).
at::Tensor lorentz_to_poincare(const at::Tensor& X);
at::Tensor poincare_to_lorentz(const at::Tensor& P);

}  // namespace mantra::manifolds
