// Dynamic trivialization (DTRIV-K): any torch::optim optimizer trains the unconstrained v of
// the model's parametrizations; every K steps each parametrization is rebased (base ← φ(v),
// v ← 0), so the optimizer never sees the distortion of a chart far from its base point.
// K = 1 is Riemannian gradient descent with the parametrization's retraction; K = kNever
// (0) never rebases: a static trivialization.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <mantra/parametrize/parametrization.h>

#include <memory>

namespace mantra::optim {

class DynamicTrivialization {
 public:
  static constexpr int64_t kNever = 0;

  // `model`'s parametrizations are found once, here; the optimizer must own their v's.
  DynamicTrivialization(std::shared_ptr<torch::optim::Optimizer> optimizer, torch::nn::Module& model, int64_t K);

  // optimizer.step(), then a rebase every K steps, then the values attached to bare modules
  // are refreshed (parametrize.h), so that their next forward sees the new point. Modules
  // wrapped in mantra::nn::Constrained and mantra's layers do not depend on this refresh.
  at::Tensor step(torch::optim::Optimizer::LossClosure closure = nullptr);
  void zero_grad(bool set_to_none = true) { optimizer_->zero_grad(set_to_none); }

  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  int64_t K() const { return K_; }
  int64_t steps() const { return steps_; }
  // Restores the step count (e.g. after loading a checkpoint) so rebases stay on schedule.
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  torch::nn::Module* model_;
  std::vector<parametrize::Parametrization> parametrizations_;
  int64_t K_;
  int64_t steps_ = 0;
};

}  // namespace mantra::optim
