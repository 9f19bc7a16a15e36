// Riemannian SGD: x ← R_x(−lr · d) with d the Riemannian gradient, or with momentum the
// momentum buffer, which is transported to each new point (heavy ball / Nesterov, dampening,
// weight decay as in torch::optim::SGD). Each param group carries its manifold; parameters
// are updated in place.
// It updates the tensors it is given and knows nothing of parametrize(): values attached to
// bare torch::nn modules are not refreshed by it (use mantra::nn::Constrained, parametrize.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include <mantra/optim/riemannian_options.h>

#include <vector>

namespace mantra::optim {

struct RiemannianSGDOptions : public RiemannianGroupOptions<RiemannianSGDOptions> {
  RiemannianSGDOptions(double lr) : RiemannianGroupOptions(lr) {}
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(bool, nesterov) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

struct RiemannianSGDParamState : public torch::optim::OptimizerCloneableParamState<RiemannianSGDParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, momentum_buffer);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// The per-parameter algorithm, in one place: RiemannianSGD::step calls it for each parameter
// and the Python optimizer (mantra.optim.RiemannianSGD) binds it. Updates `param` in place;
// `momentum_buffer` is undefined before the first step with momentum, updated in place after,
// and returned (undefined without momentum). `step` counts this update (1, 2, …).
at::Tensor riemannian_sgd_step(const at::Tensor& param, const at::Tensor& grad, at::Tensor momentum_buffer,
                               int64_t step, const RiemannianSGDOptions& options);

class RiemannianSGD : public torch::optim::Optimizer {
 public:
  explicit RiemannianSGD(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                         RiemannianSGDOptions defaults);
  explicit RiemannianSGD(std::vector<torch::Tensor> params, RiemannianSGDOptions defaults)
      : RiemannianSGD({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace mantra::optim
