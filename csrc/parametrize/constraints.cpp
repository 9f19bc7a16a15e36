#include "mantra/parametrize/constraints.h"

#include <torch/torch.h>

#include <sstream>

#include "manifolds/linalg.h"
#include "mantra/manifolds.h"

namespace mantra::parametrize {

using manifolds::Retraction;

namespace {

std::vector<int64_t> with_last_two(std::vector<int64_t> shape, int64_t a, int64_t b) {
  shape[shape.size() - 2] = a;
  shape[shape.size() - 1] = b;
  return shape;
}

const at::Tensor& parameter_of(torch::nn::Module& module, const std::string& name, const char* fn) {
  auto params = module.named_parameters(/*recurse=*/false);
  const at::Tensor* t = params.find(name);
  TORCH_CHECK_VALUE(t != nullptr, fn, ": argument 'name': ", module.name(), " has no parameter '", name, "'");
  return *t;
}

void require_matrix(const at::Tensor& t, const std::string& name, const char* fn, bool square) {
  TORCH_CHECK_VALUE(t.dim() >= 2, fn, ": '", name, "' must have at least 2 dimensions (..., n, k), got shape ", t.sizes());
  TORCH_CHECK_VALUE(!square || t.size(-1) == t.size(-2), fn, ": '", name, "' must be square (..., n, n), got shape ",
                    t.sizes());
}

Parametrization on_manifold(torch::nn::Module& module, const std::string& name, manifolds::ManifoldPtr m,
                            Retraction r = Retraction::Default) {
  return parametrize(module, name, std::move(m), ParametrizationOptions().retraction(r));
}

Retraction triv_to_retraction(const std::string& triv, const char* fn) {
  TORCH_CHECK_VALUE(triv == "expm" || triv == "exp" || triv == "cayley" || triv == "qr" || triv == "polar", fn,
                    ": argument 'triv' must be expm, cayley, qr or polar", std::string(fn) == "orthogonal" ? " (or householder)" : "",
                    ", got '", triv, "'");
  return manifolds::retraction_from_string(triv, "triv");
}

// The checks every matrix constraint starts with: shape, finiteness and (when asked)
// symmetry within atol. Returns the explanation, or "" (and X in float64 in *Xd).
std::string check_matrix(const at::Tensor& X, at::IntArrayRef shape, bool symmetric, double atol, at::Tensor* Xd) {
  std::ostringstream why;
  if (X.sizes() != shape) {
    why << "it must have shape " << shape << ", got " << X.sizes();
    return why.str();
  }
  if (!at::isfinite(X).all().item<bool>()) return "it contains NaN or Inf";
  *Xd = X.detach().to(at::kDouble);
  if (symmetric) {
    const double asym = (*Xd - Xd->mT()).abs().max().item<double>();
    if (asym > atol) {
      why << "it is not symmetric: max |X − Xᵀ| = " << asym;
      return why.str();
    }
  }
  return "";
}

Spectral spectral(torch::nn::Module& module, const std::string& name, const char* fn, SpectralOptions options) {
  const at::Tensor& t = parameter_of(module, name, fn);
  require_matrix(t, name, fn, options.symmetric());
  return parametrize(module, name, Spectral(t.sizes().vec(), options, t.options()));
}

}  // namespace

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
  const bool near_one = options.map() == SpectrumMap::NearOne || options.map() == SpectrumMap::NearOneSin ||
                        options.map() == SpectrumMap::NearOneSigmoid;
  TORCH_CHECK_VALUE(!near_one || (options.lambda() > 0 && options.lambda() < 1),
                    "Spectral: argument 'lambda' must be in (0, 1), got ", options.lambda());
  auto stiefel = std::make_shared<manifolds::Stiefel>();
  const auto p_options = ParametrizationOptions().retraction(options.retraction());
  U = register_module("U", Parametrization(stiefel, with_last_two(shape, n, r), p_options, tensor_options));
  if (!options.symmetric()) {
    V = register_module("V", Parametrization(stiefel, with_last_two(shape, k, r), p_options, tensor_options));
  }
  std::vector<int64_t> s_shape(shape.begin(), shape.end() - 2);
  s_shape.push_back(r);
  s = register_parameter("s", at::zeros(s_shape, tensor_options));
  sample("uniform");
}

at::Tensor SpectralImpl::spectrum(const at::Tensor& x) const {
  return functional::spectrum(x, options_.map(), options_.lambda(), options_.eps());
}

at::Tensor SpectralImpl::inverse_spectrum(const at::Tensor& sigma) const {
  return functional::inverse_spectrum(sigma, options_.map(), options_.lambda(), options_.eps());
}

at::Tensor SpectralImpl::compute() {
  return functional::spectral_compose(U->forward(), spectrum(s), options_.symmetric() ? at::Tensor() : V->forward());
}

std::string SpectralImpl::check(const at::Tensor& X) const { return functional::spectral_check(X, shape(), options_); }

void SpectralImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Spectral.set: argument 'X' violates the constraint: ", why);
  torch::NoGradGuard no_grad;
  auto [Uf, sigma, Vf] = functional::spectral_factors(X.detach(), options_.rank(), options_.symmetric());
  U->set(Uf);
  if (!options_.symmetric()) V->set(Vf);
  s.copy_(inverse_spectrum(sigma));
  changed();
}

void SpectralImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "Spectral.sample: argument 'init' must be 'uniform', got '", init, "'");
  {
    torch::NoGradGuard no_grad;
    U->sample("uniform");
    if (!V.is_empty()) V->sample("uniform");
    // Singular values 1: the point U Vᵀ (U Uᵀ when symmetric), well conditioned.
    s.copy_(inverse_spectrum(at::ones_like(s)));
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

at::Tensor HouseholderImpl::compute() { return functional::householder(v, special_, wide_); }

std::string HouseholderImpl::check(const at::Tensor& X) const {
  if (X.sizes() != at::IntArrayRef(shape())) {
    std::ostringstream why;
    why << "it must have shape " << at::IntArrayRef(shape()) << ", got " << X.sizes();
    return why.str();
  }
  return manifold_->check_point(X.detach(), atol_);
}

void HouseholderImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Householder.set: argument 'X' is not a point of ", manifold_->name(), ": ", why);
  {
    torch::NoGradGuard no_grad;
    v.copy_(functional::householder_vectors(X.detach().to(v.scalar_type()), special_, wide_));
  }
  changed();
}

void HouseholderImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "Householder.sample: argument 'init' must be 'uniform', got '", init, "'");
  // A Haar point; its Householder vectors exist with probability one.
  set(manifold_->random(shape(), v.options()));
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

at::Tensor CholeskyImpl::compute() { return functional::cholesky(v); }

std::string CholeskyImpl::check(const at::Tensor& X) const {
  return functional::positive_definite_check(X, shape(), atol_);
}

void CholeskyImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Cholesky.set: argument 'X' violates the constraint: ", why);
  {
    torch::NoGradGuard no_grad;
    v.copy_(functional::cholesky_inverse(X.detach().to(v.scalar_type())));
  }
  changed();
}

void CholeskyImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "Cholesky.sample: argument 'init' must be 'uniform', got '", init, "'");
  {
    // Near the identity: small off-diagonal entries and log-diagonal.
    torch::NoGradGuard no_grad;
    v.normal_(0.0, 0.1);
  }
  changed();
}

void CholeskyImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Cholesky(shape=" << at::IntArrayRef(shape()) << ")";
}

// ---------------------------------------------------------------- LinearMap

LinearMapImpl::LinearMapImpl(std::vector<int64_t> shape, bool skew, const at::TensorOptions& tensor_options, double atol)
    : ConstraintImpl(shape), skew_(skew), atol_(atol) {
  TORCH_CHECK_VALUE(shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2], skew ? "skew" : "symmetric",
                    ": argument 'shape' must be square (..., n, n), got ", at::IntArrayRef(shape));
  v = register_parameter("v", at::zeros(shape, tensor_options));
  sample("uniform");
}

at::Tensor LinearMapImpl::compute() { return functional::linear_map(v, skew_); }

std::string LinearMapImpl::check(const at::Tensor& X) const {
  return functional::linear_map_check(X, shape(), skew_, atol_);
}

void LinearMapImpl::set(const at::Tensor& X) {
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), skew_ ? "skew" : "symmetric", ".set: argument 'X' violates the constraint: ", why);
  {
    torch::NoGradGuard no_grad;
    v.copy_(X);
  }
  changed();
}

void LinearMapImpl::sample(const std::string& init) {
  TORCH_CHECK_VALUE(init == "uniform", "LinearMap.sample: argument 'init' must be 'uniform', got '", init, "'");
  {
    torch::NoGradGuard no_grad;
    v.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(shape().back())));
  }
  changed();
}

void LinearMapImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::LinearMap(" << (skew_ ? "skew" : "symmetric") << ", shape=" << at::IntArrayRef(shape()) << ")";
}

// ---------------------------------------------------------------- geotorch-style functions

Constraint orthogonal(torch::nn::Module& module, const std::string& name, const std::string& triv) {
  const at::Tensor& t = parameter_of(module, name, "orthogonal");
  require_matrix(t, name, "orthogonal", false);
  const bool square = t.size(-1) == t.size(-2);
  if (triv == "householder") {
    Householder h(t.sizes().vec(), square, t.options());
    return Constraint(std::static_pointer_cast<ConstraintImpl>(parametrize(module, name, h).ptr()));
  }
  auto p = on_manifold(module, name,
                       std::make_shared<manifolds::Stiefel>(manifolds::StiefelOptions().set_special(square)),
                       triv_to_retraction(triv, "orthogonal"));
  return Constraint(std::static_pointer_cast<ConstraintImpl>(p.ptr()));
}

Parametrization grassmannian(torch::nn::Module& module, const std::string& name, const std::string& triv) {
  require_matrix(parameter_of(module, name, "grassmannian"), name, "grassmannian", false);
  return on_manifold(module, name, std::make_shared<manifolds::Grassmannian>(), triv_to_retraction(triv, "grassmannian"));
}

Parametrization sphere(torch::nn::Module& module, const std::string& name) {
  parameter_of(module, name, "sphere");
  return on_manifold(module, name, std::make_shared<manifolds::Sphere>());
}

Parametrization oblique(torch::nn::Module& module, const std::string& name) {
  require_matrix(parameter_of(module, name, "oblique"), name, "oblique", false);
  return on_manifold(module, name, std::make_shared<manifolds::Oblique>());
}

Parametrization positive_definite(torch::nn::Module& module, const std::string& name) {
  require_matrix(parameter_of(module, name, "positive_definite"), name, "positive_definite", true);
  return on_manifold(module, name, std::make_shared<manifolds::SPD>());
}

Cholesky positive_definite_cholesky(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = parameter_of(module, name, "positive_definite_cholesky");
  require_matrix(t, name, "positive_definite_cholesky", true);
  return parametrize(module, name, Cholesky(t.sizes().vec(), t.options()));
}

Parametrization invertible(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = parameter_of(module, name, "invertible");
  require_matrix(t, name, "invertible", true);
  return on_manifold(module, name, std::make_shared<manifolds::GLPlus>(t.size(-1)));
}

Parametrization hyperbolic(torch::nn::Module& module, const std::string& name, const std::string& model) {
  parameter_of(module, name, "hyperbolic");
  TORCH_CHECK_VALUE(model == "lorentz" || model == "poincare",
                    "hyperbolic: argument 'model' must be 'lorentz' or 'poincare', got '", model, "'");
  if (model == "lorentz") return on_manifold(module, name, std::make_shared<manifolds::Lorentz>());
  return on_manifold(module, name, std::make_shared<manifolds::PoincareBall>());
}

Spectral low_rank(torch::nn::Module& module, const std::string& name, int64_t rank) {
  return spectral(module, name, "low_rank", SpectralOptions().rank(rank).map(SpectrumMap::Identity));
}

Spectral fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank) {
  return spectral(module, name, "fixed_rank", SpectralOptions().rank(rank).map(SpectrumMap::Positive));
}

Spectral positive_semidefinite(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = parameter_of(module, name, "positive_semidefinite");
  require_matrix(t, name, "positive_semidefinite", true);
  return spectral(module, name, "positive_semidefinite",
                  SpectralOptions().rank(t.size(-1)).symmetric(true).map(SpectrumMap::Square));
}

Spectral positive_semidefinite_low_rank(torch::nn::Module& module, const std::string& name, int64_t rank) {
  return spectral(module, name, "positive_semidefinite_low_rank",
                  SpectralOptions().rank(rank).symmetric(true).map(SpectrumMap::Square));
}

Spectral positive_semidefinite_fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank) {
  return spectral(module, name, "positive_semidefinite_fixed_rank",
                  SpectralOptions().rank(rank).symmetric(true).map(SpectrumMap::Positive));
}

Spectral almost_orthogonal(torch::nn::Module& module, const std::string& name, double lambda) {
  const at::Tensor& t = parameter_of(module, name, "almost_orthogonal");
  require_matrix(t, name, "almost_orthogonal", false);
  return spectral(module, name, "almost_orthogonal",
                  SpectralOptions().rank(std::min(t.size(-1), t.size(-2))).map(SpectrumMap::NearOne).lambda(lambda));
}

LinearMap symmetric(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = parameter_of(module, name, "symmetric");
  require_matrix(t, name, "symmetric", true);
  return parametrize(module, name, LinearMap(t.sizes().vec(), /*skew=*/false, t.options()));
}

LinearMap skew(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = parameter_of(module, name, "skew");
  require_matrix(t, name, "skew", true);
  return parametrize(module, name, LinearMap(t.sizes().vec(), /*skew=*/true, t.options()));
}

// ---------------------------------------------------------------- functional maps

namespace functional {

at::Tensor spectrum(const at::Tensor& x, SpectrumMap map, double lambda, double eps) {
  switch (map) {
    case SpectrumMap::Identity: return x;
    case SpectrumMap::Positive: return at::softplus(x) + eps;
    case SpectrumMap::Square: return x * x;
    case SpectrumMap::NearOne: return 1 + lambda * at::tanh(x);
    case SpectrumMap::NearOneSin: return 1 + lambda * at::sin(x);
    case SpectrumMap::NearOneSigmoid: return 1 + lambda * (2 * at::sigmoid(x) - 1);
  }
  return x;
}

at::Tensor inverse_spectrum(const at::Tensor& sigma, SpectrumMap map, double lambda, double eps) {
  switch (map) {
    case SpectrumMap::Identity: return sigma;
    // softplus⁻¹(y) = y + log(1 − e^{−y}), stable for large y.
    case SpectrumMap::Positive: {
      const at::Tensor y = (sigma - eps).clamp_min(1e-30);
      return y + at::log(-at::expm1(-y));
    }
    case SpectrumMap::Square: return sigma.clamp_min(0).sqrt();
    case SpectrumMap::NearOne: return at::atanh(((sigma - 1) / lambda).clamp(-1 + 1e-7, 1 - 1e-7));
    case SpectrumMap::NearOneSin: return at::asin(((sigma - 1) / lambda).clamp(-1, 1));
    // 2 sigmoid(s) − 1 = tanh(s/2).
    case SpectrumMap::NearOneSigmoid: return 2 * at::atanh(((sigma - 1) / lambda).clamp(-1 + 1e-7, 1 - 1e-7));
  }
  return sigma;
}

at::Tensor spectral_compose(const at::Tensor& U, const at::Tensor& sigma, const at::Tensor& V) {
  const at::Tensor scaled = U * sigma.unsqueeze(-2);
  return at::matmul(scaled, (V.defined() ? V : U).mT());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> spectral_factors(const at::Tensor& X, int64_t r, bool symmetric) {
  if (symmetric) {
    auto [lambda, Q] = at::linalg_eigh(X);
    return {Q.flip(-1).narrow(-1, 0, r), lambda.flip(-1).narrow(-1, 0, r), at::Tensor()};
  }
  auto [Us, S, Vh] = at::linalg_svd(X, /*full_matrices=*/false);
  return {Us.narrow(-1, 0, r), S.narrow(-1, 0, r), Vh.mT().narrow(-1, 0, r)};
}

std::string spectral_check(const at::Tensor& X, at::IntArrayRef shape, const SpectralOptions& options) {
  at::Tensor Xd;
  std::string common = check_matrix(X, shape, options.symmetric(), options.atol(), &Xd);
  if (!common.empty()) return common;
  std::ostringstream why;
  const double atol = options.atol();
  at::Tensor sigma;  // descending
  if (options.symmetric()) {
    sigma = at::linalg_eigvalsh(Xd).flip(-1);
    const double lowest = sigma.min().item<double>();
    if (lowest < -atol) {
      why << "it has a negative eigenvalue " << lowest;
      return why.str();
    }
  } else {
    sigma = at::linalg_svdvals(Xd);
  }
  const int64_t r = options.rank(), full = sigma.size(-1);
  const at::Tensor top = sigma.select(-1, 0).clamp_min(1.0);
  if (r < full) {
    const double excess = (sigma.select(-1, r) / top).max().item<double>();
    if (excess > atol) {
      why << "its rank exceeds " << r << ": singular value " << r + 1 << " is " << excess << " (relative)";
      return why.str();
    }
  }
  const at::Tensor kept = sigma.narrow(-1, 0, r);
  if (options.map() == SpectrumMap::Positive && (kept.select(-1, r - 1) / top).min().item<double>() <= atol) {
    why << "its rank is below " << r;
    return why.str();
  }
  if (options.map() == SpectrumMap::NearOne || options.map() == SpectrumMap::NearOneSin ||
      options.map() == SpectrumMap::NearOneSigmoid) {
    const double dev = (kept - 1).abs().max().item<double>();
    // sin reaches ±1: its closed interval [1 − λ, 1 + λ] is attainable.
    const bool closed = options.map() == SpectrumMap::NearOneSin;
    if (closed ? dev > options.lambda() + atol : dev >= options.lambda()) {
      why << "a singular value differs from 1 by " << dev << (closed ? " > lambda = " : " >= lambda = ")
          << options.lambda();
      return why.str();
    }
  }
  return "";
}

at::Tensor householder(const at::Tensor& v, bool special, bool wide) {
  // LAPACK's convention: column i holds u_i below the diagonal, u_i(i) = 1 is implicit.
  const at::Tensor lower = v.tril(-1);
  const at::Tensor tau = 2.0 / (1.0 + lower.pow(2).sum(-2));
  at::Tensor Q = at::linalg_householder_product(lower, tau.narrow(-1, 0, v.size(-1)));
  if (special && v.size(-1) % 2 == 1) {
    // k reflections have det (−1)^k: negate the last column for det = +1.
    at::Tensor sign = at::ones({v.size(-1)}, v.options());
    sign[v.size(-1) - 1] = -1;
    Q = Q * sign;
  }
  return wide ? Q.mT() : Q;
}

at::Tensor householder_vectors(const at::Tensor& X, bool special, bool wide) {
  at::Tensor R = (wide ? X.mT() : X).clone();
  const int64_t n = R.size(-2), k = R.size(-1);
  TORCH_CHECK_VALUE(n >= k, "householder_vectors: argument 'X' must be tall (or wide with wide = true), got shape ",
                    X.sizes());
  if (special && k % 2 == 1) R.select(-1, k - 1).neg_();
  at::Tensor U = at::zeros_like(R);
  // Reflect column i (below row i, unit norm) onto e_i: u = (a − e_1)/(a_1 − 1) has u_1 = 1.
  for (int64_t i = 0; i < k; ++i) {
    at::Tensor a = R.narrow(-2, i, n - i).select(-1, i);
    at::Tensor denom = a.select(-1, 0) - 1;
    TORCH_CHECK_VALUE(denom.abs().min().item<double>() > 1e-6, "Householder.set: argument 'X' has no Householder ",
                      "vectors (column ", i, " is already e_", i, ", which needs the identity instead of a ",
                      "reflection; X = I is such a point)");
    at::Tensor e = at::zeros_like(a);
    e.select(-1, 0).fill_(1);
    at::Tensor u = (a - e) / denom.unsqueeze(-1);
    U.narrow(-2, i + 1, n - i - 1).select(-1, i).copy_(u.narrow(-1, 1, n - i - 1));
    at::Tensor tau = 2.0 / (u * u).sum(-1);
    at::Tensor block = R.narrow(-2, i, n - i).narrow(-1, i, k - i);
    block.sub_(tau.unsqueeze(-1).unsqueeze(-1) * u.unsqueeze(-1) * at::matmul(u.unsqueeze(-2), block));
  }
  return U;
}

at::Tensor cholesky(const at::Tensor& v) {
  const at::Tensor L = v.tril(-1) + at::diag_embed(v.diagonal(0, -2, -1).exp());
  return at::matmul(L, L.mT());
}

at::Tensor cholesky_inverse(const at::Tensor& X) {
  const at::Tensor L = at::linalg_cholesky(linalg::sym(X));
  return L.tril(-1) + at::diag_embed(L.diagonal(0, -2, -1).log());
}

std::string positive_definite_check(const at::Tensor& X, at::IntArrayRef shape, double atol) {
  at::Tensor Xd;
  std::string common = check_matrix(X, shape, /*symmetric=*/true, atol, &Xd);
  if (!common.empty()) return common;
  std::ostringstream why;
  const double lowest = at::linalg_eigvalsh(Xd).min().item<double>();
  if (!(lowest > 0)) {
    why << "it is not positive definite: smallest eigenvalue " << lowest;
    return why.str();
  }
  return "";
}

at::Tensor linear_map(const at::Tensor& v, bool skew, const std::string& triangle) {
  TORCH_CHECK_VALUE(triangle == "both" || triangle == "lower" || triangle == "upper",
                    "linear_map: argument 'triangle' must be both, lower or upper, got '", triangle, "'");
  if (triangle == "both") return skew ? linalg::skew(v) : linalg::sym(v);
  const at::Tensor strict = triangle == "lower" ? v.tril(-1) : v.triu(1);
  if (skew) return strict - strict.mT();
  return strict + strict.mT() + at::diag_embed(v.diagonal(0, -2, -1));
}

std::string linear_map_check(const at::Tensor& X, at::IntArrayRef shape, bool skew, double atol) {
  std::ostringstream why;
  if (X.sizes() != shape) {
    why << "it must have shape " << shape << ", got " << X.sizes();
    return why.str();
  }
  const double defect = (skew ? X + X.mT() : X - X.mT()).abs().max().item<double>();
  if (!(defect <= atol)) {
    why << "it is not " << (skew ? "skew-symmetric: max |X + Xᵀ| = " : "symmetric: max |X − Xᵀ| = ") << defect;
    return why.str();
  }
  return "";
}

}  // namespace functional

}  // namespace mantra::parametrize
