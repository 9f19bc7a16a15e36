// PSD(r): symmetric positive semidefinite n×n matrices of rank r, stored dense: the symmetric
// part of FixedRank(r) (at X = U Λ Uᵀ both factors are U). Tangent projection
// P_U G + G P_U − P_U G P_U of sym(G); retraction: the rank-r truncation of X + V,
// symmetrized; project keeps the r largest eigenvalues, floored at 0.
#pragma once

#include <mantra/manifolds/fixed_rank.h>

namespace mantra::manifolds {

class PSD : public FixedRank {
 public:
  explicit PSD(int64_t rank) : FixedRank(rank) {}
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

}  // namespace mantra::manifolds
