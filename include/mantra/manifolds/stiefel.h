// The Stiefel manifold St(n, k) = {X ∈ R^{n×k} : XᵀX = I} with the Euclidean metric; when
// n == k it is O(n), and with special = true SO(n) (det X = +1, square only). A wide matrix
// (n < k) is a point when its rows are orthonormal: every method works on the transpose.
// Retractions: exp (geodesic), cayley, qr (the mantra::qr_retraction operator), polar (SVD) and
// newton_schulz (the polar factor by a fixed matmul-only schedule, exact to rounding for
// ‖I + VᵀV‖₁ <= 10¹⁴; see stiefel.cpp), each of the tangent part of V; exp and
// cayley end with the polar factor (tall) or a Newton–Schulz step (square), so that a frame
// that has drifted comes back (see stiefel.cpp). For tall frames every map costs
// O(nk²) + O(k³) and never forms an n×n matrix.
#pragma once

#include <mantra/manifolds/manifold.h>

namespace mantra::manifolds {

struct StiefelOptions {
  // SO(n): square matrices with determinant +1.
  bool special = false;
  Retraction retraction = Retraction::Exp;
  StiefelOptions& set_special(bool v) { special = v; return *this; }
  StiefelOptions& set_retraction(Retraction v) { retraction = v; return *this; }
};

class Stiefel : public Manifold {
 public:
  explicit Stiefel(StiefelOptions options = {});
  std::string name() const override { return options_.special ? "SO" : "Stiefel"; }
  const StiefelOptions& options() const { return options_; }

  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override;
  at::Tensor project(const at::Tensor& X) const override;
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
  // Without the square exp/cayley pull-back (X is a point): Y = X·Q, Q orthogonal.
  at::Tensor retract_from_point_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
  at::Tensor retract_impl(const at::Tensor& X, const at::Tensor& V, Retraction method, bool pull_back) const;

 private:
  // Q with its last column negated where det Q < 0 (by the sign of slogdet).
  static at::Tensor to_rotation(const at::Tensor& Q);
  StiefelOptions options_;
};

}  // namespace mantra::manifolds
