#include "mantra/nn/linear.h"

#include <torch/torch.h>

#include <cmath>

#include "mantra/parametrize/constraints.h"

namespace mantra::nn {

namespace {
parametrize::Constraint as_constraint(const std::shared_ptr<parametrize::ConstraintImpl>& c) {
  return parametrize::Constraint(c);
}
template <typename Holder>
parametrize::Constraint erase(Holder h) {
  return as_constraint(std::static_pointer_cast<parametrize::ConstraintImpl>(h.ptr()));
}
}  // namespace

LinearImpl::LinearImpl(const LinearOptions& options_) : options(options_) { reset(); }

void LinearImpl::reset() {
  TORCH_CHECK_VALUE(options.in_features() > 0 && options.out_features() > 0,
                    "mantra::nn::Linear: arguments 'in_features' and 'out_features' must be positive, got ",
                    options.in_features(), " and ", options.out_features());
  const std::string& s = options.scale();
  TORCH_CHECK_VALUE(s == "none" || s == "isotropic" || s == "per_row",
                    "mantra::nn::Linear: argument 'scale' must be none, isotropic or per_row, got '", s, "'");
  TORCH_CHECK_VALUE(options.orthogonality_penalty() >= 0,
                    "mantra::nn::Linear: argument 'orthogonality_penalty' must be >= 0, got ",
                    options.orthogonality_penalty());
  weight = register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  if (options.bias()) {
    bias = register_parameter("bias", torch::empty(options.out_features()));
  } else {
    bias = register_parameter("bias", {}, /*requires_grad=*/false);
  }
  reset_parameters();

  namespace pz = mantra::parametrize;
  const std::string& c = options.constraint();
  if (c == "none") {
    constraint = nullptr;
  } else if (c == "orthogonal") {
    constraint = pz::orthogonal(*this, "weight", options.triv());
  } else if (c == "grassmannian") {
    constraint = erase(pz::grassmannian(*this, "weight", options.triv()));
  } else if (c == "sphere") {
    constraint = erase(pz::sphere(*this, "weight"));
  } else if (c == "oblique") {
    constraint = erase(pz::oblique(*this, "weight"));
  } else if (c == "low_rank") {
    constraint = erase(pz::low_rank(*this, "weight", options.rank()));
  } else if (c == "fixed_rank") {
    constraint = erase(pz::fixed_rank(*this, "weight", options.rank()));
  } else if (c == "almost_orthogonal") {
    constraint = erase(pz::almost_orthogonal(*this, "weight", options.lambda()));
  } else if (c == "invertible") {
    constraint = erase(pz::invertible(*this, "weight"));
  } else if (c == "positive_definite") {
    constraint = erase(pz::positive_definite(*this, "weight"));
  } else if (c == "positive_definite_cholesky") {
    constraint = erase(pz::positive_definite_cholesky(*this, "weight"));
  } else if (c == "positive_semidefinite") {
    constraint = erase(pz::positive_semidefinite(*this, "weight"));
  } else if (c == "symmetric") {
    constraint = erase(pz::symmetric(*this, "weight"));
  } else if (c == "skew") {
    constraint = erase(pz::skew(*this, "weight"));
  } else if (c == "low_rank_oblique") {
    constraint = erase(pz::low_rank_oblique(*this, "weight", options.rank()));
  } else if (c == "low_rank_sphere") {
    constraint = erase(pz::low_rank_sphere(*this, "weight", options.rank()));
  } else {
    TORCH_CHECK_VALUE(false, "mantra::nn::Linear: argument 'constraint' must be none, orthogonal, grassmannian, sphere, ",
                      "oblique, low_rank, fixed_rank, almost_orthogonal, invertible, positive_definite, ",
                      "positive_definite_cholesky, positive_semidefinite, symmetric, skew, low_rank_oblique or ",
                      "low_rank_sphere; got '", c, "'");
  }
  // An option the chosen constraint does not use must keep its default: a value there would be
  // silently ignored.
  const bool uses_triv = c == "orthogonal" || c == "grassmannian";
  const bool uses_rank = c == "low_rank" || c == "fixed_rank" || c == "low_rank_oblique" || c == "low_rank_sphere";
  TORCH_CHECK_VALUE(uses_triv || options.triv() == pz::Defaults::triv, "mantra::nn::Linear: argument 'triv' has no ",
                    "effect with constraint '", c, "' (it must stay '", pz::Defaults::triv, "'), got '", options.triv(), "'");
  TORCH_CHECK_VALUE(uses_rank || options.rank() == 1, "mantra::nn::Linear: argument 'rank' has no effect with constraint '",
                    c, "' (it must stay 1), got ", options.rank());
  TORCH_CHECK_VALUE(c == "almost_orthogonal" || options.lambda() == pz::Defaults::lam,
                    "mantra::nn::Linear: argument 'lambda' has no effect with constraint '", c, "' (it must stay ",
                    pz::Defaults::lam, "), got ", options.lambda());
  if (s == "isotropic") {
    scale = register_parameter("scale", torch::ones({1}));
  } else if (s == "per_row") {
    scale = register_parameter("scale", torch::ones({options.out_features(), 1}));
  }
}

void LinearImpl::reset_parameters() {
  // torch::nn::Linear's initialization (kaiming-uniform weight, uniform bias).
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

torch::Tensor LinearImpl::effective_weight() {
  torch::Tensor W = constraint.is_empty() ? weight : constraint->forward();
  return scale.defined() ? W * scale : W;
}

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  auto coupled = constraint.is_empty() ? nullptr
                                       : std::dynamic_pointer_cast<parametrize::CoupledLowRankImpl>(constraint.ptr());
  if (coupled) {
    // The factors, never the m×n weight: (x V)(diag(g) H)ᵀ + b.
    return parametrize::functional::low_rank_coupled_linear(input, coupled->coupled(), coupled->point(), scale, bias);
  }
  return torch::nn::functional::linear(input, effective_weight(), bias);
}

torch::Tensor LinearImpl::penalty() {
  if (options.orthogonality_penalty() == 0) return torch::zeros({}, weight.options());
  return orthogonality_penalty(effective_weight(), options.orthogonality_penalty());
}

torch::Tensor orthogonality_penalty(const torch::Tensor& W, double lambda) {
  TORCH_CHECK_VALUE(W.dim() == 2, "orthogonality_penalty: argument 'W' must be a matrix, got shape ", W.sizes());
  // Gram matrix on the smaller side: WᵀW for tall W, WWᵀ for wide.
  torch::Tensor G = W.size(0) >= W.size(1) ? torch::matmul(W.t(), W) : torch::matmul(W, W.t());
  return 0.5 * lambda * (G - torch::eye(G.size(0), G.options())).pow(2).sum();
}

void LinearImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::nn::Linear(in_features=" << options.in_features() << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ", constraint=" << options.constraint();
  if (options.scale() != "none") stream << ", scale=" << options.scale();
  if (options.orthogonality_penalty() != 0) stream << ", orthogonality_penalty=" << options.orthogonality_penalty();
  stream << ")";
}

}  // namespace mantra::nn
