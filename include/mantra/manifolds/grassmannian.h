// The Grassmannian Gr(n, k): k-dimensional subspaces of R^n, each represented by an
// orthonormal frame X ∈ St(n, k) (the quotient St(n, k)/O(k)). Tangent vectors are horizontal
// (XᵀV = 0), with the Euclidean metric of the frames. A wide matrix (n < k) represents the
// span of its orthonormal rows; every method works on the transpose.
// Retractions: exp (geodesic, with exact parallel transport), qr, polar. The geodesic is
// written as X cos(√(VᵀV)) + V sinc(√(VᵀV)) (the thin-SVD formula of Edelman, Arias & Smith
// 1998 without the SVD), smooth at V = 0, so its gradient stays finite there.
#pragma once

#include <mantra/manifolds/stiefel.h>

namespace mantra::manifolds {

struct GrassmannianOptions {
  Retraction retraction = Retraction::Exp;
  GrassmannianOptions& set_retraction(Retraction v) { retraction = v; return *this; }
};

class Grassmannian : public Stiefel {
 public:
  explicit Grassmannian(GrassmannianOptions options = {});
  std::string name() const override { return "Grassmannian"; }

  // Onto the horizontal space: G − X XᵀG.
  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override;

  // Parallel transport of U (horizontal at X) along the geodesic t ↦ exp_X(tV), to t = 1.
  at::Tensor parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const;
  at::Tensor exp_parallel_transport(const at::Tensor& X, const at::Tensor& V, const at::Tensor& U) const override {
    return parallel_transport(X, V, U);
  }

 protected:
  // Only the horizontal part of V is used, so R_X(V) is a map of subspaces.
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
};

}  // namespace mantra::manifolds
