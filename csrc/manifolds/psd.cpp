#include "mantra/manifolds/psd.h"

#include <c10/util/Exception.h>

#include <sstream>

#include "manifolds/linalg.h"

namespace mantra::manifolds {

void PSD::check_shape(at::IntArrayRef shape, const char* arg) const {
  FixedRank::check_shape(shape, arg);
  TORCH_CHECK_VALUE(shape[shape.size() - 1] == shape[shape.size() - 2], name(), ": argument '", arg,
                    "' must be square (..., n, n), got shape ", shape);
}

at::Tensor PSD::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_same_shape(X, "X", G, "G", name() + ".proj_tangent");
  return FixedRank::proj_tangent(X, linalg::sym(G));
}

at::Tensor PSD::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  // Near a rank-r PSD point the r leading singular triplets are eigenpairs with positive
  // eigenvalues, so the truncated SVD is the truncated eigendecomposition.
  return linalg::sym(FixedRank::retract_with(X, linalg::sym(V), method));
}

at::Tensor PSD::project(const at::Tensor& X) const {
  check_shape(X.sizes(), "X");
  auto [lambda, Q] = at::linalg_eigh(linalg::sym(X));
  const int64_t n = X.size(-1);
  const at::Tensor top = lambda.narrow(-1, n - rank_, rank_).clamp_min(0);
  const at::Tensor Qr = Q.narrow(-1, n - rank_, rank_);
  return at::matmul(Qr * top.unsqueeze(-2), Qr.mT());
}

at::Tensor PSD::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  std::vector<int64_t> su(shape.begin(), shape.end());
  su[su.size() - 1] = rank_;
  const at::Tensor U = linalg::qr_positive(at::randn(su, options));
  std::vector<int64_t> ss(shape.begin(), shape.end() - 2);
  ss.push_back(rank_);
  const at::Tensor s = 1 + at::rand(ss, options);
  return at::matmul(U * s.unsqueeze(-2), U.mT());
}

std::string PSD::check_point(const at::Tensor& X, double atol) const {
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
