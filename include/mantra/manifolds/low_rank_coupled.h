// Low rank coupled with an orthogonally invariant constraint h (h(XQ) = h(X) for orthogonal Q):
// {X ∈ R^{m×n} : rank X ≤ r, h(X) = 0}, through the decoupled parametrization X = H·Vᵀ with
// V ∈ St(n, r) and H ∈ H_r = {H ∈ R^{m×r} : h([H 0]) = 0} (the space-decoupling of Gao et al.;
// [H 0]·[V V⊥]ᵀ = X, so h(X) = h_r(H)). The manifold is the product H_r × St(n, r) with the
// Euclidean (product) metric: the lifted problem min f(H Vᵀ).
//
// Storage: a point is the factor pair packed into ONE tensor P = [H; V] of shape (..., m+n, r)
// (H the first m rows, V the last n), so that every protocol method, the optimizers and the
// trivialization act on an ordinary tensor. The m×n weight is compose(P) = H Vᵀ; a constraint
// (low_rank_oblique, …) stores P and returns compose(P) as the weight of shape (..., m, n).
// factor(X) is the way back (a thin SVD of X).
//
// Instances (h_r is h itself on m×r matrices):
//   LowRankOblique        rows of X of unit norm  ⇔ rows of H of unit norm (H ∈ Ob(m, r))
//   LowRankSphere         ‖X‖_F = 1               ⇔ ‖H‖_F = 1
//   LowRankStackedStiefel X = (X_1; …; X_k), X_j (p×n) with X_j X_jᵀ = I_p ⇔ H_j H_jᵀ = I_p,
//                         i.e. each p×r block of H has orthonormal rows (needs p ≤ r, m = kp).
// Retractions, each on both factors: polar (default; H by the metric projection of H + ξ_H:
// row/Frobenius normalization or the blocks' polar factor, V by its polar factor), qr (V and
// the Stiefel blocks by QR, rows/sphere normalized) and exp (great circles / Stiefel
// geodesics). Transport: projection onto the tangent space at the new point.
// Every map of the protocol costs O((m+n) r²) + O(r³): no m×n or n×n matrix is formed (only
// compose and factor/check_matrix, which work on the weight itself, touch m×n).
#pragma once

#include <mantra/manifolds/manifold.h>

#include <utility>

namespace mantra::manifolds {

class LowRankCoupled : public Manifold {
 public:
  int64_t m() const { return m_; }
  int64_t n() const { return n_; }
  int64_t rank() const { return rank_; }
  // The manifold of H (a Sphere over rows, a Sphere of the flattened H, or Stiefel blocks),
  // acting on h_view(H).
  const Manifold& h_manifold() const { return *h_; }
  std::string spec() const override;

  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override;
  // The closest point of H_r × St(n, r): H by h's projection, V by its polar factor.
  at::Tensor project(const at::Tensor& X) const override;
  // H uniform on H_r (normalized Gaussian rows / matrix, Haar Stiefel blocks), V Haar.
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  // h's origin and V = eye(n, r).
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  // Points have shape (..., m+n, rank).
  void check_shape(at::IntArrayRef shape, const char* arg) const override;

  // The factors of P (views): H (..., m, r), V (..., n, r); and the inverse.
  std::pair<at::Tensor, at::Tensor> split(const at::Tensor& P) const;
  at::Tensor join(const at::Tensor& H, const at::Tensor& V) const;
  // The weight X = H Vᵀ (..., m, n).
  at::Tensor compose(const at::Tensor& P) const;
  // A point P with compose(P) = X, for X (..., m, n) of rank ≤ r with h(X) = 0: from the
  // thin SVD X = U Σ Wᵀ, V = W_r and H = X V (= U_r Σ_r). Differentiable where σ_r > σ_{r+1}.
  at::Tensor factor(const at::Tensor& X) const;
  // Why X (..., m, n) is not in {rank ≤ r, h(X) = 0} within atol ("" when it is): rank by
  // σ_{r+1} ≤ atol·max(1, σ_1), h by the same check as H's (rows, norm, blocks).
  std::string check_matrix(const at::Tensor& X, double atol = 1e-5) const;

 protected:
  // h_ acts on h_view of an (..., m, c) tensor (c = r for H, n for X: h has the same form).
  LowRankCoupled(std::string name, int64_t m, int64_t n, int64_t rank, ManifoldPtr h, Retraction retraction);
  virtual at::Tensor h_view(const at::Tensor& T) const = 0;
  // What h is, for messages ("rows of unit norm", …).
  virtual std::string h_description() const = 0;
  at::Tensor h_unview(const at::Tensor& T, const at::Tensor& like) const { return T.reshape(like.sizes()); }
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
  at::Tensor retract_from_point_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
  at::Tensor retract_impl(const at::Tensor& X, const at::Tensor& V, Retraction method, bool from_point) const;
  // The retraction of h_ that `method` of the product means.
  virtual Retraction h_retraction(Retraction method) const;
  // Extra words of spec() after m, n, rank (e.g. ",p=2").
  virtual std::string spec_extra() const { return ""; }

  std::string name_;
  int64_t m_, n_, rank_;
  ManifoldPtr h_;       // H_r
  ManifoldPtr frames_;  // St(n, r)
  Retraction retraction_;

 public:
  std::string name() const override { return name_; }
};

// rank ≤ r and rows of unit norm: X = H Vᵀ, H ∈ Ob(m, r) (unit rows), V ∈ St(n, r).
class LowRankOblique : public LowRankCoupled {
 public:
  LowRankOblique(int64_t m, int64_t n, int64_t rank, Retraction retraction = Retraction::Polar);

 protected:
  at::Tensor h_view(const at::Tensor& T) const override { return T; }  // each row a sphere point
  std::string h_description() const override { return "rows of unit norm"; }
};

// rank ≤ r and ‖X‖_F = 1: X = H Vᵀ, ‖H‖_F = 1.
class LowRankSphere : public LowRankCoupled {
 public:
  LowRankSphere(int64_t m, int64_t n, int64_t rank, Retraction retraction = Retraction::Polar);

 protected:
  at::Tensor h_view(const at::Tensor& T) const override;  // (..., m·c): one sphere point
  std::string h_description() const override { return "unit Frobenius norm"; }
};

// rank ≤ r and X = (X_1; …; X_k) with X_j (p×n) of orthonormal rows (X_jᵀ ∈ St(n, p)):
// X = H Vᵀ with each p×r block of H of orthonormal rows. m = k·p, p ≤ r.
class LowRankStackedStiefel : public LowRankCoupled {
 public:
  LowRankStackedStiefel(int64_t m, int64_t n, int64_t rank, int64_t p, Retraction retraction = Retraction::Polar);
  int64_t p() const { return p_; }

 protected:
  at::Tensor h_view(const at::Tensor& T) const override;  // (..., k, p, c): k wide frames
  std::string h_description() const override;
  Retraction h_retraction(Retraction method) const override { return method; }
  std::string spec_extra() const override { return ",p=" + std::to_string(p_); }

 private:
  int64_t p_;
};

}  // namespace mantra::manifolds
