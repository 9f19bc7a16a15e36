#include "mantra/manifolds/low_rank_coupled.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>

#include "mantra/manifolds/sphere.h"
#include "mantra/manifolds/stiefel.h"

namespace mantra::manifolds {

namespace {
Retraction checked_retraction(const std::string& name, Retraction r) {
  if (r == Retraction::Default) r = Retraction::Polar;
  TORCH_CHECK_VALUE(r == Retraction::Polar || r == Retraction::QR || r == Retraction::Exp, name,
                    ": argument 'retraction' must be polar, qr or exp, got ", to_string(r));
  return r;
}
}  // namespace

LowRankCoupled::LowRankCoupled(std::string name, int64_t m, int64_t n, int64_t rank, ManifoldPtr h,
                               Retraction retraction)
    : name_(std::move(name)), m_(m), n_(n), rank_(rank), h_(std::move(h)) {
  TORCH_CHECK_VALUE(m >= 1 && n >= 1, name_, ": arguments 'm' and 'n' (the weight is m×n) must be at least 1, got m = ",
                    m, ", n = ", n);
  TORCH_CHECK_VALUE(rank >= 1 && rank <= std::min(m, n), name_, ": argument 'rank' must be in [1, min(m, n) = ",
                    std::min(m, n), "] for ", m, "×", n, " matrices, got ", rank);
  retraction_ = checked_retraction(name_, retraction);
  frames_ = std::make_shared<Stiefel>(StiefelOptions().set_retraction(Retraction::Polar));
}

std::vector<Retraction> LowRankCoupled::retractions() const {
  std::vector<Retraction> all = {retraction_};
  for (Retraction r : {Retraction::Polar, Retraction::QR, Retraction::Exp}) {
    if (r != retraction_) all.push_back(r);
  }
  return all;
}

Retraction LowRankCoupled::h_retraction(Retraction method) const {
  // The sphere factors: normalization is their projection (and QR's analogue), exp is exp.
  return method == Retraction::Exp ? Retraction::Exp : Retraction::Projection;
}

void LowRankCoupled::check_shape(at::IntArrayRef shape, const char* arg) const {
  TORCH_CHECK_VALUE(shape.size() >= 2 && shape[shape.size() - 2] == m_ + n_ && shape[shape.size() - 1] == rank_, name_,
                    ": argument '", arg, "' must have shape (..., m+n, rank) = (..., ", m_ + n_, ", ", rank_,
                    ") (the factors H (m×rank) and V (n×rank) stacked), got shape ", shape);
}

std::pair<at::Tensor, at::Tensor> LowRankCoupled::split(const at::Tensor& P) const {
  check_shape(P.sizes(), "P");
  return {P.narrow(-2, 0, m_), P.narrow(-2, m_, n_)};
}

at::Tensor LowRankCoupled::join(const at::Tensor& H, const at::Tensor& V) const { return at::cat({H, V}, -2); }

at::Tensor LowRankCoupled::proj_tangent(const at::Tensor& X, const at::Tensor& G) const {
  check_args("proj_tangent", X, {{G, "G"}});
  auto [H, V] = split(X);
  auto [GH, GV] = split(G);
  const at::Tensor TH = h_unview(h_->proj_tangent(h_view(H), h_view(GH)), GH);
  return join(TH, frames_->proj_tangent(V, GV));
}

at::Tensor LowRankCoupled::retract_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  return retract_impl(X, V, method, /*from_point=*/false);
}

at::Tensor LowRankCoupled::retract_from_point_with(const at::Tensor& X, const at::Tensor& V, Retraction method) const {
  return retract_impl(X, V, method, /*from_point=*/true);
}

at::Tensor LowRankCoupled::retract_impl(const at::Tensor& X, const at::Tensor& D, Retraction method,
                                        bool from_point) const {
  auto [H, V] = split(X);
  auto [DH, DV] = split(D);
  const Retraction hr = h_retraction(method);
  const at::Tensor HH = h_view(H), HD = h_view(DH);
  const at::Tensor YH = from_point ? h_->retract_from_point(HH, HD, hr) : h_->retract(HH, HD, hr);
  const at::Tensor YV = from_point ? frames_->retract_from_point(V, DV, method) : frames_->retract(V, DV, method);
  return join(h_unview(YH, DH), YV);
}

at::Tensor LowRankCoupled::project(const at::Tensor& X) const {
  check_args("project", X);
  auto [H, V] = split(X);
  return join(h_unview(h_->project(h_view(H)), H), frames_->project(V));
}

namespace {
std::vector<int64_t> with_rows(at::IntArrayRef shape, int64_t rows) {
  std::vector<int64_t> s(shape.begin(), shape.end());
  s[s.size() - 2] = rows;
  return s;
}
}  // namespace

at::Tensor LowRankCoupled::random(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  const at::Tensor like = at::empty(with_rows(shape, m_), options);
  const at::Tensor H = h_unview(h_->random(h_view(like).sizes(), options), like);
  return join(H, frames_->random(with_rows(shape, n_), options));
}

at::Tensor LowRankCoupled::origin(at::IntArrayRef shape, const at::TensorOptions& options) const {
  check_shape(shape, "shape");
  const at::Tensor like = at::empty(with_rows(shape, m_), options);
  const at::Tensor H = h_unview(h_->origin(h_view(like).sizes(), options), like);
  return join(H, frames_->origin(with_rows(shape, n_), options));
}

std::string LowRankCoupled::check_point(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  std::ostringstream s;
  if (X.size(-2) != m_ + n_ || X.size(-1) != rank_) {
    s << "it must have shape (..., m+n, rank) = (..., " << m_ + n_ << ", " << rank_ << "), got " << X.sizes();
    return s.str();
  }
  auto [H, V] = split(X);
  if (std::string why = h_->check_point(h_view(H), atol); !why.empty()) {
    s << "its factor H (the first " << m_ << " rows) does not have " << h_description() << ": " << why;
    return s.str();
  }
  if (std::string why = frames_->check_point(V, atol); !why.empty()) {
    s << "its factor V (the last " << n_ << " rows) is not in St(" << n_ << ", " << rank_ << "): " << why;
    return s.str();
  }
  return "";
}

at::Tensor LowRankCoupled::compose(const at::Tensor& P) const {
  auto [H, V] = split(P);
  return at::matmul(H, V.mT());
}

at::Tensor LowRankCoupled::factor(const at::Tensor& X) const {
  TORCH_CHECK_VALUE(X.defined() && X.dim() >= 2 && X.size(-2) == m_ && X.size(-1) == n_, name_,
                    ".factor: argument 'X' must have shape (..., m, n) = (..., ", m_, ", ", n_, "), got ",
                    X.defined() ? X.sizes() : at::IntArrayRef{});
  // V spans X's top-r right singular subspace; H = X V then reproduces X exactly at rank ≤ r
  // and keeps h, as h(X) = h([XV XV⊥]) = h([H 0]) by the orthogonal invariance.
  const at::Tensor Vh = std::get<2>(at::linalg_svd(X, /*full_matrices=*/false));
  const at::Tensor V = Vh.narrow(-2, 0, rank_).mT();
  return join(at::matmul(X, V), V);
}

std::string LowRankCoupled::check_matrix(const at::Tensor& X, double atol) const {
  if (std::string why = check_point_common(X, atol); !why.empty()) return why;
  std::ostringstream s;
  if (X.size(-2) != m_ || X.size(-1) != n_) {
    s << "it must have shape (..., m, n) = (..., " << m_ << ", " << n_ << "), got " << X.sizes();
    return s.str();
  }
  if (X.numel() == 0) return "";
  const at::Tensor Xd = X.detach().to(at::kDouble);
  if (rank_ < std::min(m_, n_)) {
    const at::Tensor sv = at::linalg_svdvals(Xd);
    const double excess = (sv.select(-1, rank_) / sv.select(-1, 0).clamp_min(1.0)).max().item<double>();
    if (excess > atol) {
      s << "its rank exceeds " << rank_ << ": singular value " << rank_ + 1 << " is " << excess << " (relative) > atol = "
        << atol;
      return s.str();
    }
  }
  if (std::string why = h_->check_point(h_view(Xd), atol); !why.empty()) {
    s << "it does not have " << h_description() << ": " << why;
    return s.str();
  }
  return "";
}

// ---------------------------------------------------------------- the instances

LowRankOblique::LowRankOblique(int64_t m, int64_t n, int64_t rank, Retraction retraction)
    : LowRankCoupled("LowRankOblique", m, n, rank, std::make_shared<Sphere>(Retraction::Projection), retraction) {}

LowRankSphere::LowRankSphere(int64_t m, int64_t n, int64_t rank, Retraction retraction)
    : LowRankCoupled("LowRankSphere", m, n, rank, std::make_shared<Sphere>(Retraction::Projection), retraction) {}

at::Tensor LowRankSphere::h_view(const at::Tensor& T) const { return T.flatten(-2); }

LowRankStackedStiefel::LowRankStackedStiefel(int64_t m, int64_t n, int64_t rank, int64_t p, Retraction retraction)
    : LowRankCoupled("LowRankStackedStiefel", m, n, rank,
                     std::make_shared<Stiefel>(StiefelOptions().set_retraction(Retraction::Polar)), retraction),
      p_(p) {
  TORCH_CHECK_VALUE(p >= 1 && m % p == 0, "LowRankStackedStiefel: argument 'p' (the rows of one block) must be at least 1 ",
                    "and divide m = ", m, " (X splits into m/p blocks of p rows), got p = ", p);
  TORCH_CHECK_VALUE(p <= rank, "LowRankStackedStiefel: argument 'p' must be at most 'rank' = ", rank,
                    ": a block of p orthonormal rows has rank p, so h is not satisfiable at rank ", rank, " with p = ", p);
}

at::Tensor LowRankStackedStiefel::h_view(const at::Tensor& T) const { return T.unflatten(-2, {m_ / p_, p_}); }

std::string LowRankStackedStiefel::h_description() const {
  return "blocks of " + std::to_string(p_) + " orthonormal rows";
}

}  // namespace mantra::manifolds
