#include "weight_constraint.h"

#include <torch/torch.h>

namespace mantra::nn::detail {

namespace {
template <typename Holder>
parametrize::Constraint erase(Holder h) {
  return parametrize::Constraint(std::static_pointer_cast<parametrize::ConstraintImpl>(h.ptr()));
}
}  // namespace

void check_scale(const char* layer, const std::string& s) {
  TORCH_CHECK_VALUE(s == "none" || s == "isotropic" || s == "per_row", layer,
                    ": argument 'scale' must be none, isotropic or per_row, got '", s, "'");
}

parametrize::Constraint attach_weight_constraint(torch::nn::Module& module, const std::string& name, const char* layer,
                                                 const std::string& c, const std::string& triv, int64_t rank,
                                                 double lambda) {
  namespace pz = mantra::parametrize;
  pz::Constraint constraint{nullptr};
  if (c == "none") {
  } else if (c == "orthogonal") {
    constraint = pz::orthogonal(module, name, triv);
  } else if (c == "grassmannian") {
    constraint = erase(pz::grassmannian(module, name, triv));
  } else if (c == "sphere") {
    constraint = erase(pz::sphere(module, name));
  } else if (c == "oblique") {
    constraint = erase(pz::oblique(module, name));
  } else if (c == "low_rank") {
    constraint = erase(pz::low_rank(module, name, rank));
  } else if (c == "fixed_rank") {
    constraint = erase(pz::fixed_rank(module, name, rank));
  } else if (c == "almost_orthogonal") {
    constraint = erase(pz::almost_orthogonal(module, name, lambda));
  } else if (c == "invertible") {
    constraint = erase(pz::invertible(module, name));
  } else if (c == "positive_definite") {
    constraint = erase(pz::positive_definite(module, name));
  } else if (c == "positive_definite_cholesky") {
    constraint = erase(pz::positive_definite_cholesky(module, name));
  } else if (c == "positive_semidefinite") {
    constraint = erase(pz::positive_semidefinite(module, name));
  } else if (c == "symmetric") {
    constraint = erase(pz::symmetric(module, name));
  } else if (c == "skew") {
    constraint = erase(pz::skew(module, name));
  } else if (c == "low_rank_oblique") {
    constraint = erase(pz::low_rank_oblique(module, name, rank));
  } else if (c == "low_rank_sphere") {
    constraint = erase(pz::low_rank_sphere(module, name, rank));
  } else {
    TORCH_CHECK_VALUE(false, layer, ": argument 'constraint' must be none, orthogonal, grassmannian, sphere, ",
                      "oblique, low_rank, fixed_rank, almost_orthogonal, invertible, positive_definite, ",
                      "positive_definite_cholesky, positive_semidefinite, symmetric, skew, low_rank_oblique or ",
                      "low_rank_sphere; got '", c, "'");
  }
  // An option the chosen constraint does not use must keep its default: a value there would be
  // silently ignored.
  const bool uses_triv = c == "orthogonal" || c == "grassmannian";
  const bool uses_rank = c == "low_rank" || c == "fixed_rank" || c == "low_rank_oblique" || c == "low_rank_sphere";
  TORCH_CHECK_VALUE(uses_triv || triv == pz::Defaults::triv, layer, ": argument 'triv' has no ",
                    "effect with constraint '", c, "' (it must stay '", pz::Defaults::triv, "'), got '", triv, "'");
  TORCH_CHECK_VALUE(uses_rank || rank == 1, layer, ": argument 'rank' has no effect with constraint '", c,
                    "' (it must stay 1), got ", rank);
  TORCH_CHECK_VALUE(c == "almost_orthogonal" || lambda == pz::Defaults::lam, layer,
                    ": argument 'lambda' has no effect with constraint '", c, "' (it must stay ", pz::Defaults::lam,
                    "), got ", lambda);
  return constraint;
}

torch::Tensor register_scale(torch::nn::Module& module, const std::string& s, int64_t rows) {
  if (s == "isotropic") return module.register_parameter("scale", torch::ones({1}));
  if (s == "per_row") return module.register_parameter("scale", torch::ones({rows, 1}));
  return {};
}

std::shared_ptr<parametrize::CoupledLowRankImpl> coupled_of(const parametrize::Constraint& constraint) {
  if (constraint.is_empty()) return nullptr;
  return std::dynamic_pointer_cast<parametrize::CoupledLowRankImpl>(constraint.ptr());
}

}  // namespace mantra::nn::detail
