// FixedRankPSD(r): symmetric positive semidefinite n×n matrices of rank exactly r, stored
// dense: the symmetric part of FixedRank(r) (at X = U Λ Uᵀ both factors are U). (Not geotorch's
// "PSD", which is positive definite: that is SPD here.) Tangent projection
// P G + G P − P G P of sym(G), P = U Uᵀ. Retraction (named projection, the only one): the
// factor form X = L Lᵀ, L = U Λ^{1/2}, moved to L' = L + (I − P/2) V L⁺ᵀ, R_X(V) = L' L'ᵀ
// = X_r + W P + P Wᵀ + W X⁺ Wᵀ with W = (I − P/2) V and X_r, X⁺ the rank-r part and
// pseudo-inverse of X: positive semidefinite of rank r for every step (a truncation of
// X + V is not, for steps with ‖V‖ ≫ ‖X‖), X + V + O(‖V‖²), and for X off the manifold its
// rank-r part. project keeps the r largest eigenvalues, floored at 0. The old name PSD is an
// alias (name() stays "PSD", which saved optimizer states carry).
#pragma once

#include <mantra/manifolds/fixed_rank.h>

namespace mantra::manifolds {

class FixedRankPSD : public FixedRank {
 public:
  explicit FixedRankPSD(int64_t rank) : FixedRank(rank) {}
  std::string name() const override { return "PSD"; }

  at::Tensor proj_tangent(const at::Tensor& X, const at::Tensor& G) const override;
  at::Tensor project(const at::Tensor& X) const override;
  // U diag(s) Uᵀ with Haar U (n×r) and s uniform in [1, 2).
  at::Tensor random(at::IntArrayRef shape, const at::TensorOptions& options = {}) const override;
  // FixedRank's rank check, plus symmetry and eigenvalues >= −atol·λ_max.
  std::string check_point(const at::Tensor& X, double atol = 1e-5) const override;
  void check_shape(at::IntArrayRef shape, const char* arg) const override;

 protected:
  at::Tensor retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const override;
};

using PSD = FixedRankPSD;  // the former name

}  // namespace mantra::manifolds
