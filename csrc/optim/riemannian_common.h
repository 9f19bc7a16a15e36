// Pieces shared by RiemannianSGD and RiemannianAdam.
#pragma once

#include <torch/torch.h>

#include "mantra/manifolds/euclidean.h"
#include "mantra/manifolds/manifold.h"

namespace mantra::optim::detail {

inline bool is_euclidean(const manifolds::ManifoldPtr& m) {
  return dynamic_cast<const manifolds::Euclidean*>(m.get()) != nullptr;
}

// A per-point scalar (shape: batch dims) shaped to broadcast against the point tensor.
inline at::Tensor per_point(const at::Tensor& scalars, const at::Tensor& like, int64_t point_dims) {
  std::vector<int64_t> shape = scalars.sizes().vec();
  shape.insert(shape.end(), point_dims, 1);
  return scalars.view(shape);
}

// Checks every parameter of every group against its manifold at construction (clear error
// naming the group and the parameter instead of a wrong update later).
template <typename Options>
void check_group_points(const std::vector<torch::optim::OptimizerParamGroup>& groups, const char* optimizer) {
  for (size_t g = 0; g < groups.size(); ++g) {
    const manifolds::ManifoldPtr& m = static_cast<const Options&>(groups[g].options()).manifold();
    TORCH_CHECK_VALUE(m != nullptr, optimizer, ": param group ", g, " has a null 'manifold'");
    const auto& params = groups[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string why = m->check_point(params[i].detach(), 1e-4);
      TORCH_CHECK_VALUE(why.empty(), optimizer, ": parameter ", i, " of param group ", g, " is not a point of ",
                        m->name(), ": ", why);
    }
  }
}

// The frame of both optimizers' step(): the closure's loss (evaluated with grad), then, without
// grad, update(p, options) for every parameter that has a gradient, group by group.
template <typename Options, typename Update>
torch::Tensor step_each(std::vector<torch::optim::OptimizerParamGroup>& groups,
                        const torch::optim::Optimizer::LossClosure& closure, Update&& update) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : groups) {
    auto& options = static_cast<Options&>(group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined()) update(p, options);
    }
  }
  return loss;
}

// The RiemannianGroupOptions part of an options archive: lr, weight_decay, stabilize, the
// retraction and the manifold's name (the manifold itself is structure; load_keeping_manifolds
// checks the name). Written inside Options::serialize (the torch macros call the accessors).
template <typename Options>
void write_group_options(torch::serialize::OutputArchive& archive, const Options& options) {
  archive.write("lr", c10::IValue(options.lr()));
  archive.write("weight_decay", c10::IValue(options.weight_decay()));
  archive.write("stabilize", c10::IValue(options.stabilize()));
  archive.write("retraction", c10::IValue(manifolds::to_string(options.retraction())));
  archive.write("manifold", c10::IValue(options.manifold()->name()));
}
template <typename Options>
void read_group_options(torch::serialize::InputArchive& archive, Options& options) {
  c10::IValue value;
  // As torch's _TORCH_OPTIM_DESERIALIZE_TORCH_ARG: a missing non-tensor field is an internal error.
  auto field = [&](const char* key) -> const c10::IValue& {
    TORCH_INTERNAL_ASSERT(archive.try_read(key, value), "missing optimizer option '", key, "'");
    return value;
  };
  options.lr(field("lr").toDouble());
  options.weight_decay(field("weight_decay").toDouble());
  options.stabilize(field("stabilize").toInt());
  archive.read("retraction", value);
  options.retraction(manifolds::retraction_from_string(value.toStringRef()));
  archive.read("manifold", value);
  options.saved_manifold_name = value.toStringRef();
}

// torch::optim's loader replaces each group's options by the saved ones; the manifold is
// structure, not state, so it is kept (and its saved name must match).
template <typename State, typename Options>
void load_keeping_manifolds(torch::optim::Optimizer& opt, torch::serialize::InputArchive& archive,
                            const char* optimizer) {
  std::vector<manifolds::ManifoldPtr> manifolds_before;
  for (auto& g : opt.param_groups()) manifolds_before.push_back(static_cast<Options&>(g.options()).manifold());
  torch::optim::serialize<State, Options>(archive, opt);
  for (size_t i = 0; i < opt.param_groups().size(); ++i) {
    auto& options = static_cast<Options&>(opt.param_groups()[i].options());
    const std::string saved = options.saved_manifold_name;
    TORCH_CHECK_VALUE(saved.empty() || saved == manifolds_before[i]->name(), optimizer, ": param group ", i,
                      " was saved on ", saved, " but this optimizer's group is on ", manifolds_before[i]->name());
    options.manifold(manifolds_before[i]);
  }
}

}  // namespace mantra::optim::detail
