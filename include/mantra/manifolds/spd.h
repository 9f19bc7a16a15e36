// Symmetric positive definite matrices SPD(n) with the affine-invariant metric
// ⟨U, V⟩_X = tr(X⁻¹U X⁻¹V): complete, of non-positive curvature, invariant under X ↦ GXGᵀ.
// Tangent vectors are symmetric matrices. Retraction: exp (the geodesic
// X^{1/2} expm(X^{-1/2} V X^{-1/2}) X^{1/2}), with the metric's parallel transport.
// Every matrix function goes through eigh (linalg::sym_funm), whose backward stays finite at
// repeated eigenvalues (e.g. at V = 0 or X = I).
#pragma once

#include <mantra/manifolds/manifold.h>

namespace mantra::manifolds {

struct SPDOptions {
  // project() lifts eigenvalues to max(min_eigenvalue, n·eps·‖X‖_F).
  double min_eigenvalue = 0.0;
  SPDOptions& set_min_eigenvalue(double v) { min_eigenvalue = v; return *this; }
};

class SPD : public Manifold {
 public:
  explicit SPD(SPDOptions options = {});
  std::string name() const override { return "SPD"; }
  std::string spec() const override;

  // Onto the symmetric matrices (orthogonal in this metric too: skew ⟂ symmetric).
  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  // X sym(G) X: the vector whose metric pairing with ξ is tr(Gᵀξ).
  at::Tensor egrad_to_rgrad(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override { return {Retraction::Exp}; }
  // B^{1/2} sym(u) B^{1/2}: the isometry from T_I (where the metric is tr(UV)) to T_B, so
  // φ_B(u) = B^{1/2} expm(sym u) B^{1/2}.
  at::Tensor chart_vector(const at::Tensor& B, const at::Tensor& u) const override;
  // Parallel transport along the geodesic from X to Y: E V Eᵀ with E = (Y X⁻¹)^{1/2}.
  at::Tensor transport(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const override;
  std::pair<at::Tensor, at::Tensor> retract_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U,
                                                      Retraction method = Retraction::Default) const override;
  at::Tensor inner(const at::Tensor& X, const at::Tensor& U, const at::Tensor& V) const override;
  // Symmetrize and lift eigenvalues to the floor (see SPDOptions).
  at::Tensor project(const at::Tensor& X) const override;
  // Q diag(exp(g/2)) Qᵀ with Haar Q and Gaussian g.
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;  // I
  // Symmetric within atol·max(1, max|X|) and positive definite.
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;

  // The Riemannian logarithm: the V with exp_X(V) = Y.
  at::Tensor log(const at::Tensor& X, const at::Tensor& Y) const;
  // The geodesic distance ‖logm(X^{-1/2} Y X^{-1/2})‖_F (shape: the batch dimensions).
  at::Tensor distance(const at::Tensor& X, const at::Tensor& Y) const;

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;

 private:
  at::Tensor transport_unchecked(const at::Tensor& X, const at::Tensor& Y, const at::Tensor& V) const;
  SPDOptions options_;
};

}  // namespace mantra::manifolds
