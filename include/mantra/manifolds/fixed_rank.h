// Fixed-rank matrices M_r = {X ∈ R^{n×k} : rank X = r}, stored dense, with the Euclidean
// metric. At X = U S Vᵀ (thin SVD, r columns) the tangent space is {U M Vᵀ + U_p Vᵀ + U V_pᵀ :
// U_pᵀU = 0, V_pᵀV = 0}; its projection is P_U G + G P_V − P_U G P_V. The one retraction is
// the projection retraction: the truncated SVD of X + V (the closest rank-r matrix), with a
// backward that stays finite at rank-r points, where the trailing singular values coincide at 0.
// Maps cost O(nk·min(n, k)) and never form an n×n (or k×k beyond min(n,k)) matrix.
#pragma once

#include <mantra/manifolds/manifold.h>

namespace mantra::manifolds {

class FixedRank : public Manifold {
 public:
  // Matrices of rank `rank` and any size with min(n, k) >= rank.
  explicit FixedRank(int64_t rank);
  // Matrices of size (..., n, k) only; rank <= min(n, k) is checked here.
  FixedRank(int64_t rank, int64_t n, int64_t k);
  std::string name() const override { return "FixedRank"; }
  int64_t rank() const { return rank_; }
  std::string spec() const override;

  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  std::vector<Retraction> retractions() const override { return {Retraction::Projection}; }
  // The truncated SVD: the closest matrix of rank <= r (rank exactly r unless X has lower rank).
  at::Tensor project(const at::Tensor& X) const override;
  // U diag(s) Vᵀ with Haar U (n×r), V (k×r) and s uniform in [1, 2).
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  // The first r columns of the identity (eye(n, k) with ones only on the first r diagonal entries).
  at::Tensor origin(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  // Rank r within atol: σ_r > atol·σ_1 and σ_{r+1} <= atol·σ_1.
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;

  int64_t rank_;
  int64_t n_ = -1, k_ = -1;  // the fixed size, when given
};

}  // namespace mantra::manifolds
