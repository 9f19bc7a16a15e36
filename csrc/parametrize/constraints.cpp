#include "mantra/parametrize/constraints.h"

#include <torch/torch.h>

#include <sstream>

#include "mantra/manifolds.h"

namespace mantra::parametrize {

using manifolds::Retraction;

namespace fn = functional;

namespace {
std::vector<int64_t> with_last_two(std::vector<int64_t> shape, int64_t a, int64_t b) {
  shape[shape.size() - 2] = a;
  shape[shape.size() - 1] = b;
  return shape;
}

}  // namespace

// ---------------------------------------------------------------- CoupledLowRank

namespace {
std::vector<int64_t> coupled_chart(const manifolds::LowRankCoupled& M, std::vector<int64_t> shape) {
  TORCH_CHECK_VALUE(shape.size() >= 2 && shape[shape.size() - 2] == M.m() && shape[shape.size() - 1] == M.n(),
                    "CoupledLowRank: argument 'shape' must be (..., m, n) = (..., ", M.m(), ", ", M.n(), ") for ",
                    M.spec(), ", got ", at::IntArrayRef(shape));
  return with_last_two(shape, M.m() + M.n(), M.rank());
}
}  // namespace

CoupledLowRankImpl::CoupledLowRankImpl(std::shared_ptr<const manifolds::LowRankCoupled> manifold,
                                       std::vector<int64_t> shape, ParametrizationOptions options,
                                       const at::TensorOptions& tensor_options)
    : ParametrizationImpl(manifold, shape, coupled_chart(*manifold, shape), options.scale(1.0), tensor_options),
      coupled_(std::move(manifold)) {}

at::Tensor CoupledLowRankImpl::output(const at::Tensor& point) const {
  return fn::low_rank_coupled_compose(*coupled_, point);
}

std::string CoupledLowRankImpl::check(const at::Tensor& X) const {
  return fn::low_rank_coupled_check(*coupled_, X, shape(), options().atol());
}

void CoupledLowRankImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "CoupledLowRank.set: argument 'X' is not a point of ", coupled_->name(), ": ", why);
  {
    torch::NoGradGuard no_grad;
    base.copy_(fn::low_rank_coupled_base(*coupled_, X));
    v.zero_();
  }
  changed();
}

void CoupledLowRankImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::CoupledLowRank(" << coupled_->spec() << ", shape=" << at::IntArrayRef(shape()) << ")";
}

// ---------------------------------------------------------------- Spectral

SpectralImpl::SpectralImpl(std::vector<int64_t> shape, SpectralOptions options, const at::TensorOptions& tensor_options)
    : ConstraintImpl(shape), options_(options) {
  TORCH_CHECK_VALUE(shape.size() >= 2, "Spectral: argument 'shape' must have at least 2 dimensions, got ",
                    at::IntArrayRef(shape));
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  const int64_t r = options.rank();
  TORCH_CHECK_VALUE(!options.symmetric() || n == k, "Spectral: a symmetric constraint needs square matrices, got shape ",
                    at::IntArrayRef(shape));
  TORCH_CHECK_VALUE(r >= 1 && r <= std::min(n, k), "Spectral: argument 'rank' must be in [1, min(n, k) = ",
                    std::min(n, k), "], got ", r);
  TORCH_CHECK_VALUE(!near_one(options.map()) || (options.lambda() >= 0 && options.lambda() <= 1),
                    "Spectral: argument 'lambda' must be in [0, 1] (geotorch's range), got ", options.lambda());
  auto factor = [&](int64_t rows) {
    const auto p_options = ParametrizationOptions().retraction(options.retraction());
    const auto factor_shape = with_last_two(shape, rows, r);
    if (options.triv()) {
      return Parametrization(std::shared_ptr<ParametrizationImpl>(
          std::make_shared<CallableTrivializationImpl>(factor_shape, options.triv(), false, p_options, tensor_options)));
    }
    return Parametrization(std::make_shared<manifolds::Stiefel>(), factor_shape, p_options, tensor_options);
  };
  U = register_module("U", factor(n));
  if (!options.symmetric()) V = register_module("V", factor(k));
  std::vector<int64_t> s_shape(shape.begin(), shape.end() - 2);
  s_shape.push_back(r);
  // The factors start at their random points; singular values 1 (the point U Vᵀ).
  s = register_parameter("s", fn::spectral_initial_s(s_shape, options_.map(), options_.lambda(), options_.eps(),
                                                     options_.f(), tensor_options));
}

at::Tensor SpectralImpl::spectrum(const at::Tensor& x) const {
  if (options_.f().f) return fn::spectrum_of(options_.f().f(x), options_.map(), options_.lambda());
  return fn::spectrum(x, options_.map(), options_.lambda(), options_.eps());
}

at::Tensor SpectralImpl::inverse_spectrum(const at::Tensor& sigma) const {
  if (options_.f().f) {
    TORCH_CHECK_VALUE(static_cast<bool>(options_.f().f_inv),
                      "Spectral.set: cannot assign to a constraint whose 'f' has no inverse: pass f with f_inv");
    return options_.f().f_inv(fn::inverse_spectrum_of(sigma, options_.map(), options_.lambda()));
  }
  return fn::inverse_spectrum(sigma, options_.map(), options_.lambda(), options_.eps());
}

at::Tensor SpectralImpl::compute() {
  return fn::spectral_compose(U->forward(), spectrum(s), options_.symmetric() ? at::Tensor() : V->forward());
}

std::string SpectralImpl::check(const at::Tensor& X) const {
  return fn::spectral_check(X, shape(), options_.rank(), options_.symmetric(), options_.map(), options_.lambda(),
                            options_.atol());
}

void SpectralImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Spectral.set: argument 'X' violates the constraint: ", why);
  {
    torch::NoGradGuard no_grad;
    auto [Uf, sigma, Vf] = fn::spectral_factors(X.detach().to(s.scalar_type()), options_.rank(), options_.symmetric());
    const at::Tensor new_s = inverse_spectrum(sigma);
    U->set(Uf);
    if (!options_.symmetric()) V->set(Vf);
    s.copy_(new_s);
  }
  changed();
}

void SpectralImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "Spectral.sample: argument 'init' must be 'uniform', got '", init, "'");
  {
    torch::NoGradGuard no_grad;
    U->sample("uniform");
    if (!V.is_empty()) V->sample("uniform");
    s.copy_(fn::spectral_initial_s(s.sizes(), options_.map(), options_.lambda(), options_.eps(), options_.f(),
                                   s.options()));
  }
  changed();
}

void SpectralImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Spectral(shape=" << at::IntArrayRef(shape()) << ", rank=" << options_.rank()
         << (options_.symmetric() ? ", symmetric" : "") << ")";
}

// ---------------------------------------------------------------- Householder

HouseholderImpl::HouseholderImpl(std::vector<int64_t> shape, bool special, const at::TensorOptions& tensor_options,
                                 double atol)
    : ConstraintImpl(shape), special_(special), atol_(atol) {
  TORCH_CHECK_VALUE(shape.size() >= 2, "Householder: argument 'shape' must have at least 2 dimensions, got ",
                    at::IntArrayRef(shape));
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  TORCH_CHECK_VALUE(!special || n == k, "Householder: SO(n) needs square matrices, got shape ", at::IntArrayRef(shape));
  wide_ = n < k;
  manifold_ = std::make_shared<manifolds::Stiefel>(manifolds::StiefelOptions().set_special(special));
  v = register_parameter("v", at::zeros(wide_ ? with_last_two(shape, k, n) : shape, tensor_options));
  sample("uniform");
}

at::Tensor HouseholderImpl::compute() { return fn::householder(v, special_, wide_); }

std::string HouseholderImpl::check(const at::Tensor& X) const {
  return fn::point_check(*manifold_, X, shape(), atol_);
}

void HouseholderImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Householder.set: argument 'X' is not a point of ", manifold_->name(), ": ", why);
  {
    torch::NoGradGuard no_grad;
    v.copy_(fn::householder_vectors(X.detach().to(v.scalar_type()), special_, wide_));
  }
  changed();
}

void HouseholderImpl::sample(const std::string& init) {
  // The identity has no Householder vectors under this map (each reflector is a true reflection).
  TORCH_CHECK_VALUE(init != "origin", "Householder.sample: argument 'init' cannot be 'origin' (the identity is not a ",
                    "product of reflections of this map); use uniform, henaff, cayley or torus");
  // A Haar point or a rotation init; its Householder vectors exist with probability one.
  set(fn::sample_point(*manifold_, shape(), init, v.options()));
}

void HouseholderImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Householder(shape=" << at::IntArrayRef(shape()) << (special_ ? ", SO(n)" : "") << ")";
}

// ---------------------------------------------------------------- Cholesky

CholeskyImpl::CholeskyImpl(std::vector<int64_t> shape, const at::TensorOptions& tensor_options, double atol)
    : ConstraintImpl(shape), atol_(atol) {
  TORCH_CHECK_VALUE(shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2],
                    "Cholesky: argument 'shape' must be square (..., n, n), got ", at::IntArrayRef(shape));
  v = register_parameter("v", at::zeros(shape, tensor_options));
  sample("uniform");
}

at::Tensor CholeskyImpl::compute() { return fn::cholesky(v); }

std::string CholeskyImpl::check(const at::Tensor& X) const {
  return fn::positive_definite_check(X, shape(), atol_);
}

void CholeskyImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Cholesky.set: argument 'X' violates the constraint: ", why);
  {
    torch::NoGradGuard no_grad;
    v.copy_(fn::cholesky_inverse(X.detach().to(v.scalar_type())));
  }
  changed();
}

void CholeskyImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "Cholesky.sample: argument 'init' must be 'uniform', got '", init, "'");
  {
    torch::NoGradGuard no_grad;
    v.copy_(fn::cholesky_sample(v.sizes(), v.options()));
  }
  changed();
}

void CholeskyImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Cholesky(shape=" << at::IntArrayRef(shape()) << ")";
}

// ---------------------------------------------------------------- LinearMap

LinearMapImpl::LinearMapImpl(std::vector<int64_t> shape, bool skew, const at::TensorOptions& tensor_options, double atol,
                             std::string triangle)
    : ConstraintImpl(shape), skew_(skew), atol_(atol), triangle_(std::move(triangle)) {
  fn::linear_map(at::zeros({1, 1}), skew, triangle_);  // validates the triangle
  TORCH_CHECK_VALUE(shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2], skew ? "skew" : "symmetric",
                    ": argument 'shape' must be square (..., n, n), got ", at::IntArrayRef(shape));
  v = register_parameter("v", at::zeros(shape, tensor_options));
  sample("uniform");
}

at::Tensor LinearMapImpl::compute() { return fn::linear_map(v, skew_, triangle_); }

std::string LinearMapImpl::check(const at::Tensor& X) const {
  return fn::linear_map_check(X, shape(), skew_, atol_);
}

void LinearMapImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), skew_ ? "skew" : "symmetric", ".set: argument 'X' violates the constraint: ", why);
  {
    torch::NoGradGuard no_grad;
    v.copy_(X.detach());
  }
  changed();
}

void LinearMapImpl::attach_from(const at::Tensor& current) {
  {
    torch::NoGradGuard no_grad;
    v.copy_(current.detach());
  }
  changed();
}

void LinearMapImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "LinearMap.sample: argument 'init' must be 'uniform', got '", init, "'");
  {
    torch::NoGradGuard no_grad;
    v.copy_(fn::linear_map_sample(v.sizes(), v.options()));
  }
  changed();
}

void LinearMapImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::LinearMap(" << (skew_ ? "skew" : "symmetric") << ", shape=" << at::IntArrayRef(shape()) << ")";
}

// ---------------------------------------------------------------- Hurwitz

namespace {
Constraint positive_definite_factor(const std::vector<int64_t>& shape, const std::string& triv,
                                    const at::TensorOptions& tensor_options) {
  if (triv == "cholesky") {
    return Constraint(std::static_pointer_cast<ConstraintImpl>(Cholesky(shape, tensor_options).ptr()));
  }
  TORCH_CHECK_VALUE(triv == "expm", "alpha_stable: argument 'triv' must be 'expm' or 'cholesky', got '", triv, "'");
  return Constraint(std::static_pointer_cast<ConstraintImpl>(
      Parametrization(std::make_shared<manifolds::SPD>(), shape, ParametrizationOptions(), tensor_options).ptr()));
}
}  // namespace

HurwitzImpl::HurwitzImpl(std::vector<int64_t> shape, double alpha, const std::string& triv,
                         const at::TensorOptions& tensor_options)
    : ConstraintImpl(shape), alpha_(alpha), triv_(triv) {
  TORCH_CHECK_VALUE(shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2],
                    "alpha_stable: argument 'shape' must be square (..., n, n), got ", at::IntArrayRef(shape));
  TORCH_CHECK_VALUE(std::isfinite(alpha), "alpha_stable: argument 'alpha' must be finite, got ", alpha);
  // The draw order (P, Q, then S) is the Python twin's.
  P = register_module("P", positive_definite_factor(shape, triv, tensor_options));
  Q = register_module("Q", positive_definite_factor(shape, triv, tensor_options));
  S = register_module("S", LinearMap(shape, /*skew=*/true, tensor_options));
}

at::Tensor HurwitzImpl::compute() { return fn::hurwitz_compose(P->forward(), Q->forward(), S->forward(), alpha_); }

std::string HurwitzImpl::check(const at::Tensor& X) const { return fn::hurwitz_check(X, shape(), alpha_); }

void HurwitzImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Hurwitz.set: argument 'X' violates the constraint: ", why);
  auto [Pf, Qf, Sf] = fn::hurwitz_factors(X, alpha_, "Hurwitz.set");
  // The factors are checked before any is set (S is skew by construction): a refused
  // assignment changes nothing.
  const std::string bad_P = P->check(Pf), bad_Q = Q->check(Qf);
  TORCH_CHECK_VALUE(bad_P.empty() && bad_Q.empty(), "Hurwitz.set: a positive definite factor of 'X' is refused: ",
                    bad_P, bad_Q);
  {
    torch::NoGradGuard no_grad;
    P->set(Pf);
    Q->set(Qf);
    S->set(Sf);
  }
  changed();
}

void HurwitzImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "Hurwitz.sample: argument 'init' must be 'uniform', got '", init, "'");
  P->sample("uniform");
  Q->sample("uniform");
  S->sample("uniform");
  changed();
}

void HurwitzImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Hurwitz(alpha=" << alpha_ << ", triv=" << triv_ << ", shape=" << at::IntArrayRef(shape()) << ")";
}

}  // namespace mantra::parametrize
