#include "mantra/manifolds/fixed_rank.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>

#include "manifolds/linalg.h"

namespace mantra::manifolds {

using linalg::is_wide;
using linalg::tall;

FixedRank::FixedRank(int64_t rank) : rank_(rank) {
  TORCH_CHECK_VALUE(rank >= 1, "FixedRank: argument 'rank' must be at least 1, got ", rank);
}

FixedRank::FixedRank(int64_t rank, int64_t n, int64_t k) : FixedRank(rank) {
  TORCH_CHECK_VALUE(n >= 1 && k >= 1, "FixedRank: arguments 'n' and 'k' must be at least 1, got n = ", n, ", k = ", k);
  TORCH_CHECK_VALUE(rank <= std::min(n, k), "FixedRank: argument 'rank' must be at most min(n, k) = ", std::min(n, k),
                    " for ", n, "×", k, " matrices, got ", rank);
  n_ = n;
  k_ = k;
}

void FixedRank::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(shape.size() >= 2, name(), ": argument '", arg, "' must have at least 2 dimensions (..., n, k), got shape ",
                    shape);
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  if (n_ >= 0) {
    TORCH_CHECK_VALUE(n == n_ && k == k_, name(), ": argument '", arg, "' must have shape (..., ", n_, ", ", k_,
                      "), got shape ", shape);
  }
  TORCH_CHECK_VALUE(rank_ <= std::min(n, k), name(), ": argument 'rank' (", rank_, ") must be at most min(n, k) = ",
                    std::min(n, k), " of argument '", arg, "' with shape ", shape);
}

at::Tensor FixedRank::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  const bool wide = is_wide(X);
  const at::Tensor Xt = tall(X, wide), Gt = tall(G, wide);
  // P_V = V_r V_rᵀ and P_U G = U_r U_rᵀ G = X (V_r Σ_r⁻² V_rᵀ) XᵀG: no n×n matrix.
  auto [P, Pinv] = linalg::gram_top(Xt, rank_);
  const at::Tensor PUG = at::matmul(Xt, at::matmul(Pinv, at::matmul(Xt.mT(), Gt)));
  return tall(PUG + at::matmul(Gt - PUG, P), wide);
}

at::Tensor FixedRank::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction) const {
  check_shape(X.sizes(), "X");
  return linalg::truncate_rank(X + V, rank_);
}

at::Tensor FixedRank::project(const at::Tensor& X) const {
  check_args("project", X);
  return linalg::truncate_rank(X, rank_);
}

at::Tensor FixedRank::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  std::vector<int64_t> su(shape.begin(), shape.end()), sv(shape.begin(), shape.end());
  const int64_t k = su[su.size() - 1];
  su[su.size() - 1] = rank_;
  sv[sv.size() - 2] = k;
  sv[sv.size() - 1] = rank_;
  // Q factors of Gaussians with diag(R) > 0 are Haar.
  const at::Tensor U = linalg::qr_positive(at::randn(su, options));
  const at::Tensor V = linalg::qr_positive(at::randn(sv, options));
  std::vector<int64_t> ss(shape.begin(), shape.end() - 2);
  ss.push_back(rank_);
  const at::Tensor s = 1 + at::rand(ss, options);
  return at::matmul(U * s.unsqueeze(-2), V.mT());
}

at::Tensor FixedRank::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  at::Tensor X = at::zeros({n, k}, options);
  X.diagonal().narrow(0, 0, rank_).fill_(1);
  return X.expand(shape).clone();
}

std::string FixedRank::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  std::ostringstream s;
  if (X.dim() < 2) {
    s << "it must have at least 2 dimensions (..., n, k), got shape " << X.sizes();
    return s.str();
  }
  const int64_t n = X.size(-2), k = X.size(-1);
  if (n_ >= 0 && (n != n_ || k != k_)) {
    s << "it must have shape (..., " << n_ << ", " << k_ << "), got " << X.sizes();
    return s.str();
  }
  if (rank_ > std::min(n, k)) {
    s << "rank " << rank_ << " is impossible for " << n << "×" << k << " matrices (argument 'rank' > min(n, k))";
    return s.str();
  }
  if (X.numel() == 0) return "";
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  const at::Tensor sv = at::linalg_svdvals(X.to(at::kDouble));
  const at::Tensor s1 = sv.select(-1, 0);
  if ((s1 == 0).any().item<bool>()) return "it is zero (rank 0)";
  const double low = (sv.select(-1, rank_ - 1) / s1).min().item<double>();
  if (low <= atol) {
    s << "its rank is below " << rank_ << ": σ_" << rank_ << "/σ_1 = " << low << " <= atol = " << atol;
    return s.str();
  }
  if (rank_ < std::min(n, k)) {
    const double high = (sv.select(-1, rank_) / s1).max().item<double>();
    if (high > atol) {
      s << "its rank exceeds " << rank_ << ": σ_" << rank_ + 1 << "/σ_1 = " << high << " > atol = " << atol;
      return s.str();
    }
  }
  return "";
}

}  // namespace mantra::manifolds
