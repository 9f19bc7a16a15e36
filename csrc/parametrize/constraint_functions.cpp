// The geotorch-style functions: each builds a constraint for module.name and attaches it.
#include <torch/torch.h>

#include "mantra/manifolds.h"
#include "mantra/parametrize/constraints.h"

namespace mantra::parametrize {

using manifolds::Retraction;

namespace {

const at::Tensor& parameter_of(torch::nn::Module& module, const std::string& name, const char* fn) {
  auto params = module.named_parameters(/*recurse=*/false);
  const at::Tensor* t = params.find(name);
  TORCH_CHECK_VALUE(t != nullptr, fn, ": argument 'name': ", module.name(), " has no parameter '", name, "'");
  return *t;
}

const at::Tensor& matrix_of(torch::nn::Module& module, const std::string& name, const char* fn, bool square = false) {
  const at::Tensor& t = parameter_of(module, name, fn);
  TORCH_CHECK_VALUE(t.dim() >= 2, fn, ": '", name, "' must have at least 2 dimensions (..., n, k), got shape ", t.sizes());
  TORCH_CHECK_VALUE(!square || t.size(-1) == t.size(-2), fn, ": '", name, "' must be square (..., n, n), got shape ",
                    t.sizes());
  return t;
}

Parametrization on_manifold(torch::nn::Module& module, const std::string& name, manifolds::ManifoldPtr m,
                            ParametrizationOptions options = {}) {
  return parametrize(module, name, std::move(m), options);
}

Retraction triv_to_retraction(const std::string& triv, const manifolds::Manifold& m, const char* fn) {
  return functional::triv_retraction(triv, m, fn);
}

Spectral spectral(torch::nn::Module& module, const std::string& name, const char* fn, SpectralOptions options,
                  const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, fn, options.symmetric());
  options.retraction(triv_to_retraction(triv, manifolds::Stiefel(), fn));
  return parametrize(module, name, Spectral(t.sizes().vec(), options, t.options()));
}

int64_t full_rank(const at::Tensor& t) { return std::min(t.size(-1), t.size(-2)); }

template <typename Holder>
Constraint erased(Holder h) {
  return Constraint(std::static_pointer_cast<ConstraintImpl>(h.ptr()));
}

}  // namespace

Constraint orthogonal(torch::nn::Module& module, const std::string& name, const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, "orthogonal");
  const bool square = t.size(-1) == t.size(-2);
  if (triv == "householder") return erased(parametrize(module, name, Householder(t.sizes().vec(), square, t.options())));
  auto m = std::make_shared<manifolds::Stiefel>(manifolds::StiefelOptions().set_special(square));
  return erased(on_manifold(module, name, m, ParametrizationOptions().retraction(triv_to_retraction(triv, *m, "orthogonal"))));
}

Constraint orthogonal(torch::nn::Module& module, const std::string& name, TensorFunction triv) {
  const at::Tensor& t = matrix_of(module, name, "orthogonal");
  TORCH_CHECK_VALUE(static_cast<bool>(triv), "orthogonal: argument 'triv' is an empty function");
  const bool square = t.size(-1) == t.size(-2);
  auto c = std::make_shared<CallableTrivializationImpl>(t.sizes().vec(), std::move(triv), square,
                                                        ParametrizationOptions(), t.options());
  attach(module, name, c);
  return Constraint(std::static_pointer_cast<ConstraintImpl>(c));
}

Parametrization grassmannian(torch::nn::Module& module, const std::string& name, const std::string& triv) {
  matrix_of(module, name, "grassmannian");
  auto m = std::make_shared<manifolds::Grassmannian>();
  return on_manifold(module, name, m, ParametrizationOptions().retraction(triv_to_retraction(triv, *m, "grassmannian")));
}

Parametrization sphere(torch::nn::Module& module, const std::string& name, double radius, bool embedded) {
  parameter_of(module, name, "sphere");
  TORCH_CHECK_VALUE(std::isfinite(radius) && radius > 0, "sphere: argument 'radius' must be finite and positive, got ",
                    radius);
  return on_manifold(module, name, std::make_shared<manifolds::Sphere>(),
                     ParametrizationOptions().scale(radius).retraction(embedded ? Retraction::Projection
                                                                                : Retraction::Default));
}

Parametrization oblique(torch::nn::Module& module, const std::string& name) {
  matrix_of(module, name, "oblique");
  return on_manifold(module, name, std::make_shared<manifolds::Oblique>());
}

Constraint positive_definite(torch::nn::Module& module, const std::string& name, const std::string& triv) {
  matrix_of(module, name, "positive_definite", true);
  if (triv == "cholesky") return erased(positive_definite_cholesky(module, name));
  TORCH_CHECK_VALUE(triv == "expm", "positive_definite: argument 'triv' must be 'expm' or 'cholesky', got '", triv, "'");
  return erased(on_manifold(module, name, std::make_shared<manifolds::SPD>()));
}

Spectral positive_definite(torch::nn::Module& module, const std::string& name, SpectrumFunction f,
                           const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, "positive_definite", true);
  return spectral(module, name, "positive_definite",
                  SpectralOptions().rank(t.size(-1)).symmetric(true).map(SpectrumMap::Positive).f(std::move(f)), triv);
}

Cholesky positive_definite_cholesky(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = matrix_of(module, name, "positive_definite_cholesky", true);
  return parametrize(module, name, Cholesky(t.sizes().vec(), t.options()));
}

Parametrization invertible(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = matrix_of(module, name, "invertible", true);
  return on_manifold(module, name, std::make_shared<manifolds::GLPlus>(t.size(-1)));
}

Parametrization sln(torch::nn::Module& module, const std::string& name) {
  const at::Tensor& t = matrix_of(module, name, "sln", true);
  return on_manifold(module, name, std::make_shared<manifolds::SL>(t.size(-1)));
}

Parametrization hyperbolic(torch::nn::Module& module, const std::string& name, const std::string& model) {
  parameter_of(module, name, "hyperbolic");
  TORCH_CHECK_VALUE(model == "lorentz" || model == "poincare",
                    "hyperbolic: argument 'model' must be 'lorentz' or 'poincare', got '", model, "'");
  if (model == "lorentz") return on_manifold(module, name, std::make_shared<manifolds::Lorentz>());
  return on_manifold(module, name, std::make_shared<manifolds::PoincareBall>());
}

Spectral low_rank(torch::nn::Module& module, const std::string& name, int64_t rank, const std::string& triv) {
  return spectral(module, name, "low_rank", SpectralOptions().rank(rank).map(SpectrumMap::Identity), triv);
}

Spectral fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank, const std::string& triv) {
  return spectral(module, name, "fixed_rank", SpectralOptions().rank(rank).map(SpectrumMap::Positive), triv);
}

Spectral fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank, SpectrumFunction f,
                    const std::string& triv) {
  return spectral(module, name, "fixed_rank", SpectralOptions().rank(rank).map(SpectrumMap::Positive).f(std::move(f)),
                  triv);
}

Spectral positive_semidefinite(torch::nn::Module& module, const std::string& name, const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, "positive_semidefinite", true);
  return spectral(module, name, "positive_semidefinite",
                  SpectralOptions().rank(t.size(-1)).symmetric(true).map(SpectrumMap::Square), triv);
}

Spectral positive_semidefinite_low_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                                        const std::string& triv) {
  return spectral(module, name, "positive_semidefinite_low_rank",
                  SpectralOptions().rank(rank).symmetric(true).map(SpectrumMap::Square), triv);
}

Spectral positive_semidefinite_fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                                          const std::string& triv) {
  return spectral(module, name, "positive_semidefinite_fixed_rank",
                  SpectralOptions().rank(rank).symmetric(true).map(SpectrumMap::Positive), triv);
}

Spectral positive_semidefinite_fixed_rank(torch::nn::Module& module, const std::string& name, int64_t rank,
                                          SpectrumFunction f, const std::string& triv) {
  return spectral(module, name, "positive_semidefinite_fixed_rank",
                  SpectralOptions().rank(rank).symmetric(true).map(SpectrumMap::Positive).f(std::move(f)), triv);
}

Spectral almost_orthogonal(torch::nn::Module& module, const std::string& name, double lambda, const std::string& f,
                           const std::string& triv) {
  const SpectrumMap map = spectrum_map_from_string(f, "f");
  TORCH_CHECK_VALUE(near_one(map), "almost_orthogonal: argument 'f' must be sin, tanh or scaled_sigmoid, got '", f, "'");
  const at::Tensor& t = matrix_of(module, name, "almost_orthogonal");
  return spectral(module, name, "almost_orthogonal", SpectralOptions().rank(full_rank(t)).map(map).lambda(lambda), triv);
}

Spectral almost_orthogonal(torch::nn::Module& module, const std::string& name, double lambda, SpectrumFunction f,
                           const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, "almost_orthogonal");
  // A user's f into [−1, 1]: accepted as sin's closed range [1 − λ, 1 + λ].
  return spectral(module, name, "almost_orthogonal",
                  SpectralOptions().rank(full_rank(t)).map(SpectrumMap::NearOneSin).lambda(lambda).f(std::move(f)),
                  triv);
}

namespace {
template <typename M, typename... Extra>
CoupledLowRank coupled_low_rank(torch::nn::Module& module, const std::string& name, const char* fn, int64_t rank,
                                const std::string& triv, Extra... extra) {
  const at::Tensor& t = matrix_of(module, name, fn);
  const int64_t m = t.size(-2), n = t.size(-1);
  TORCH_CHECK_VALUE(rank >= 1 && rank <= std::min(m, n), fn, ": argument 'rank' must be in [1, min(m, n) = ",
                    std::min(m, n), "] for '", name, "' of shape ", t.sizes(), ", got ", rank);
  auto manifold = std::make_shared<M>(m, n, rank, extra...);
  const Retraction r = triv_to_retraction(triv, *manifold, fn);
  return parametrize(module, name,
                     CoupledLowRank(manifold, t.sizes().vec(), ParametrizationOptions().retraction(r), t.options()));
}
}  // namespace

CoupledLowRank low_rank_oblique(torch::nn::Module& module, const std::string& name, int64_t rank,
                                const std::string& triv) {
  return coupled_low_rank<manifolds::LowRankOblique>(module, name, "low_rank_oblique", rank, triv);
}

CoupledLowRank low_rank_sphere(torch::nn::Module& module, const std::string& name, int64_t rank,
                               const std::string& triv) {
  return coupled_low_rank<manifolds::LowRankSphere>(module, name, "low_rank_sphere", rank, triv);
}

CoupledLowRank low_rank_stacked_stiefel(torch::nn::Module& module, const std::string& name, int64_t rank, int64_t p,
                                        const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, "low_rank_stacked_stiefel");
  TORCH_CHECK_VALUE(p >= 1 && t.size(-2) % p == 0, "low_rank_stacked_stiefel: argument 'p' (the rows of one block) ",
                    "must divide the ", t.size(-2), " rows of '", name, "' (shape ", t.sizes(), "), got ", p);
  TORCH_CHECK_VALUE(p <= rank, "low_rank_stacked_stiefel: argument 'p' must be at most 'rank' = ", rank,
                    " (p orthonormal rows have rank p: not satisfiable), got ", p);
  return coupled_low_rank<manifolds::LowRankStackedStiefel>(module, name, "low_rank_stacked_stiefel", rank, triv, p);
}

Hurwitz alpha_stable(torch::nn::Module& module, const std::string& name, double alpha, const std::string& triv) {
  const at::Tensor& t = matrix_of(module, name, "alpha_stable", true);
  TORCH_CHECK_VALUE(std::isfinite(alpha), "alpha_stable: argument 'alpha' must be finite, got ", alpha);
  TORCH_CHECK_VALUE(triv == "expm" || triv == "cholesky", "alpha_stable: argument 'triv' must be 'expm' or 'cholesky', got '",
                    triv, "'");
  return parametrize(module, name, Hurwitz(t.sizes().vec(), alpha, triv, t.options()));
}

LinearMap symmetric(torch::nn::Module& module, const std::string& name, bool lower) {
  const at::Tensor& t = matrix_of(module, name, "symmetric", true);
  return parametrize(module, name,
                     LinearMap(t.sizes().vec(), /*skew=*/false, t.options(), Defaults::atol, lower ? "lower" : "upper"));
}

LinearMap skew(torch::nn::Module& module, const std::string& name, bool lower) {
  const at::Tensor& t = matrix_of(module, name, "skew", true);
  return parametrize(module, name,
                     LinearMap(t.sizes().vec(), /*skew=*/true, t.options(), Defaults::atol, lower ? "lower" : "upper"));
}

}  // namespace mantra::parametrize
