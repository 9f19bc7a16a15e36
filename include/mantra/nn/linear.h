// mantra::nn::Linear: a drop-in for torch::nn::Linear (same options, same forward) whose
// weight carries a constraint, optionally scaled (W = g·Q with a learnable isotropic or per-row
// g), and with the non-orthogonality penalty λ/2·‖WᵀW − I‖² (WWᵀ for wide W) for soft
// constraints.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <mantra/parametrize/constraint.h>

#include <string>

namespace mantra::nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  // "none", or a constraint of mantra::parametrize: "orthogonal", "grassmannian", "sphere",
  // "oblique", "low_rank", "fixed_rank", "almost_orthogonal", "invertible",
  // "positive_definite", "positive_definite_cholesky", "positive_semidefinite", "symmetric", "skew",
  // "low_rank_oblique", "low_rank_sphere" (X = H Vᵀ of rank ≤ `rank` with unit rows / unit norm).
  // Weight-normalized low rank W = diag(g)·X, X ∈ low_rank_oblique(r): constraint
  // "low_rank_oblique" with scale "per_row". The coupled low-rank constraints apply the weight
  // in factored form, ((x V) Hᵀ)·g + b: (m+n)·r multiply-adds per sample instead of m·n.
  TORCH_ARG(std::string, constraint) = "orthogonal";
  TORCH_ARG(std::string, triv) = "expm";  // orthogonal: expm, cayley, qr, polar, householder; grassmannian: the first four
  TORCH_ARG(int64_t, rank) = 1;           // low_rank, fixed_rank, low_rank_oblique, low_rank_sphere
  TORCH_ARG(double, lambda) = 0.1;        // almost_orthogonal
  // "none", "isotropic" (one learnable g) or "per_row" (one g per output feature).
  TORCH_ARG(std::string, scale) = "none";
  // λ of the penalty λ/2·‖WᵀW − I‖² returned by penalty() (0: none).
  TORCH_ARG(double, orthogonality_penalty) = 0.0;
};

class LinearImpl : public torch::nn::Cloneable<LinearImpl> {
 public:
  LinearImpl(int64_t in_features, int64_t out_features) : LinearImpl(LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const LinearOptions& options);

  void reset() override;
  void reset_parameters();
  torch::Tensor forward(const torch::Tensor& input);
  // The effective weight g·Q (computed once per ParametrizationScope).
  torch::Tensor effective_weight();
  // λ/2·‖WᵀW − I‖² of the effective weight (a scalar; zero when the option is 0).
  torch::Tensor penalty();
  void pretty_print(std::ostream& stream) const override;

  LinearOptions options;
  torch::Tensor weight;  // the module tensor (kept current by refresh() when constrained)
  torch::Tensor bias;
  torch::Tensor scale;   // g, when options.scale != "none"
  parametrize::Constraint constraint{nullptr};
};

TORCH_MODULE(Linear);

// λ/2·‖WᵀW − I‖² (WWᵀ for wide W): the soft orthogonality penalty of LinearImpl::penalty(),
// also bound for the Python frontend.
torch::Tensor orthogonality_penalty(const torch::Tensor& W, double lambda);

}  // namespace mantra::nn
