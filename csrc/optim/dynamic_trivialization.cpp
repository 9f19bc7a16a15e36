#include "mantra/optim/dynamic_trivialization.h"

#include <torch/torch.h>

#include <unordered_set>

#include "mantra/parametrize/parametrize.h"

namespace mantra::optim {

DynamicTrivialization::DynamicTrivialization(std::shared_ptr<torch::optim::Optimizer> optimizer,
                                             torch::nn::Module& model, int64_t K)
    : optimizer_(std::move(optimizer)), model_(&model), K_(K) {
  TORCH_CHECK_VALUE(optimizer_ != nullptr, "DynamicTrivialization: argument 'optimizer' is null");
  TORCH_CHECK_VALUE(K >= 0, "DynamicTrivialization: argument 'K' must be >= 0 (0: never rebase), got ", K);
  std::unordered_set<const void*> owned;
  for (const auto& group : optimizer_->param_groups()) {
    for (const auto& p : group.params()) owned.insert(p.unsafeGetTensorImpl());
  }
  for (auto& item : parametrize::parametrizations(model)) {
    TORCH_CHECK_VALUE(owned.count(item.second->v.unsafeGetTensorImpl()), "DynamicTrivialization: the optimizer does ",
                      "not own the parameter 'v' of the parametrization '", item.first,
                      "' (build the optimizer from model->parameters() after parametrizing)");
    parametrizations_.push_back(item.second);
  }
  bool constrained = !parametrizations_.empty();
  for (const auto& m : model.modules()) constrained = constrained || std::dynamic_pointer_cast<parametrize::ConstraintImpl>(m);
  TORCH_CHECK_VALUE(constrained, "DynamicTrivialization: argument 'model' has no constraints (use parametrize() first)");
}

at::Tensor DynamicTrivialization::step(torch::optim::Optimizer::LossClosure closure) {
  at::Tensor loss = optimizer_->step(std::move(closure));
  ++steps_;
  if (K_ > 0 && steps_ % K_ == 0) {
    for (auto& p : parametrizations_) p->rebase();
  }
  // Keeps bare modules' attached values current (parametrize.h), with their history for the
  // next training forward; Constrained<M> and mantra's layers recompute in their forward.
  at::AutoGradMode enable_grad(true);
  parametrize::refresh(*model_);
  return loss;
}

}  // namespace mantra::optim
