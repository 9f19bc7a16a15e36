#include "mantra/manifolds/psd.h"

#include <c10/util/Exception.h>

#include <sstream>

#include "manifolds/linalg.h"

namespace mantra::manifolds {

void FixedRankPSD::check_shape(at::IntArrayRef shape, const char* arg) const {
  FixedRank::check_shape(shape, arg);
  TORCH_CHECK_VALUE(shape[shape.size() - 1] == shape[shape.size() - 2], name(), ": argument '", arg,
                    "' must be square (..., n, n), got shape ", shape);
}

at::Tensor FixedRankPSD::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  return FixedRank::proj_tangent(X, linalg::sym(G));
}

at::Tensor FixedRankPSD::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction) const {
  // The factor form (see psd.h), through gram_top: at a PSD X the top-r right singular vectors
  // are the top-r eigenvectors, P = V_r V_rᵀ, and X·Pinv = V_r Λ_r⁻¹ V_rᵀ = X⁺. O(n³), no SVD
  // of X + V, differentiable in X and V (gram_top's backward at rank-r X).
  check_shape(X.sizes(), "X");
  const at::Tensor S = linalg::sym(X), Vs = linalg::sym(V);
  auto [P, Pinv] = linalg::gram_top(S, rank_);
  const at::Tensor Xr = linalg::sym(at::matmul(S, P));
  const at::Tensor Xp = linalg::sym(at::matmul(S, Pinv));
  const at::Tensor W = Vs - 0.5 * at::matmul(P, Vs);
  const at::Tensor WP = at::matmul(W, P);
  return linalg::sym(Xr + WP + WP.mT() + at::matmul(at::matmul(W, Xp), W.mT()));
}

at::Tensor FixedRankPSD::project(const at::Tensor& X) const {
  check_args("project", X);
  const at::Tensor bad = linalg::nonfinite_matrices(X);  // NaN out, not a finite matrix
  auto [lambda, Q] = linalg::eigh(linalg::sym(X.masked_fill(bad, 0)));
  const int64_t n = X.size(-1);
  const at::Tensor top = lambda.narrow(-1, n - rank_, rank_).clamp_min(0);
  const at::Tensor Qr = Q.narrow(-1, n - rank_, rank_);
  return linalg::fill_nan(at::matmul(Qr * top.unsqueeze(-2), Qr.mT()), bad);
}

at::Tensor FixedRankPSD::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  std::vector<int64_t> su(shape.begin(), shape.end());
  su[su.size() - 1] = rank_;
  const at::Tensor U = linalg::qr_positive(at::randn(su, options));
  std::vector<int64_t> ss(shape.begin(), shape.end() - 2);
  ss.push_back(rank_);
  const at::Tensor s = 1 + at::rand(ss, options);
  return at::matmul(U * s.unsqueeze(-2), U.mT());
}

std::string FixedRankPSD::check_point(const at::Tensor& X, double atol) const {
  std::string why = FixedRank::check_point(X, atol);
  if (!why.empty()) return why;
  std::ostringstream s;
  if (X.size(-1) != X.size(-2)) {
    s << "it must be square, got shape " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  const at::Tensor Xd = X.detach().to(at::kDouble);
  const at::Tensor scale = Xd.abs().amax({-2, -1}).clamp_min(1e-300);
  const double asym = ((Xd - Xd.mT()).abs().amax({-2, -1}) / scale).max().item<double>();
  if (asym > atol) {
    s << "it is not symmetric: max |X − Xᵀ| / max |X| = " << asym;
    return s.str();
  }
  const double lowest = (at::linalg_eigvalsh(linalg::sym(Xd)).select(-1, 0) / scale).min().item<double>();
  if (lowest < -atol) {
    s << "it has a negative eigenvalue (relative " << lowest << ")";
    return s.str();
  }
  return "";
}

}  // namespace mantra::manifolds
