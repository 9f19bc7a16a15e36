// Riemannian Adam (Bécigneul & Ganea 2019): the first moment is a tangent vector transported
// along each step, the second moment one scalar per manifold point (per entry on Euclidean
// tensors, where this is exactly torch::optim::Adam). Each param group carries its manifold;
// parameters are updated in place (storage and strides kept).
// It updates the tensors it is given and knows nothing of parametrize(): values attached to
// bare torch::nn modules are not refreshed by it (use mantra::nn::Constrained, parametrize.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include <mantra/optim/riemannian_options.h>

#include <tuple>
#include <vector>

namespace mantra::optim {

struct RiemannianAdamOptions : public RiemannianGroupOptions<RiemannianAdamOptions> {
  RiemannianAdamOptions(double lr = 1e-3) : RiemannianGroupOptions(lr) {}
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(bool, amsgrad) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

struct RiemannianAdamParamState : public torch::optim::OptimizerCloneableParamState<RiemannianAdamParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);
  TORCH_ARG(torch::Tensor, max_exp_avg_sq);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// The per-parameter algorithm, in one place: RiemannianAdam::step calls it for each parameter
// and the Python optimizer (mantra.optim.RiemannianAdam) binds it.
struct RiemannianAdamBuffers {
  at::Tensor exp_avg;         // tangent vector, shaped like the parameter
  at::Tensor exp_avg_sq;      // one scalar per point (per entry on Euclidean groups)
  at::Tensor max_exp_avg_sq;  // amsgrad only
};
// The arithmetic of the Euclidean special case: torch::optim::Adam's (C++: m ← β₁m + (1−β₁)g,
// √(1−β₂ᵗ) by sqrt) or torch.optim.Adam's (Python: m.lerp_(g, 1−β₁), (1−β₂ᵗ)**0.5). The same
// algorithm; the two orders make each frontend equal its torch counterpart bit for bit.
enum class AdamArithmetic { TorchCpp, TorchPython };
// Zero buffers for `param` (shapes from the group's manifold).
RiemannianAdamBuffers riemannian_adam_init(const at::Tensor& param, const RiemannianAdamOptions& options);
// One update of `param` (in place) with its gradient `grad`; `step` counts this update (1, 2, …).
// The buffers are updated in place.
void riemannian_adam_step(const at::Tensor& param, const at::Tensor& grad, const RiemannianAdamBuffers& buffers,
                          int64_t step, const RiemannianAdamOptions& options,
                          AdamArithmetic arithmetic = AdamArithmetic::TorchCpp);

class RiemannianAdam : public torch::optim::Optimizer {
 public:
  explicit RiemannianAdam(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                          RiemannianAdamOptions defaults = {});
  explicit RiemannianAdam(std::vector<torch::Tensor> params, RiemannianAdamOptions defaults = {})
      : RiemannianAdam({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace mantra::optim
