#include "mantra/nn/linear.h"

#include <torch/torch.h>

#include <cmath>

#include "weight_constraint.h"

namespace mantra::nn {

LinearImpl::LinearImpl(const LinearOptions& options_) : options(options_) { reset(); }

void LinearImpl::reset() {
  TORCH_CHECK_VALUE(options.in_features() > 0 && options.out_features() > 0,
                    "mantra::nn::Linear: arguments 'in_features' and 'out_features' must be positive, got ",
                    options.in_features(), " and ", options.out_features());
  detail::check_scale("mantra::nn::Linear", options.scale());
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

  constraint = detail::attach_weight_constraint(*this, "weight", "mantra::nn::Linear", options.constraint(),
                                                options.triv(), options.rank(), options.lambda());
  scale = detail::register_scale(*this, options.scale(), options.out_features());
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
  if (auto coupled = detail::coupled_of(constraint)) {
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
