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

// Checks every parameter of a group against its manifold at construction (clear error naming
// the group and the parameter instead of a wrong update later).
inline void check_group_points(const torch::optim::OptimizerParamGroup& group, const manifolds::ManifoldPtr& m,
                               size_t group_index, const char* optimizer) {
  TORCH_CHECK_VALUE(m != nullptr, optimizer, ": param group ", group_index, " has a null 'manifold'");
  for (size_t i = 0; i < group.params().size(); ++i) {
    const std::string why = m->check_point(group.params()[i].detach(), 1e-4);
    TORCH_CHECK_VALUE(why.empty(), optimizer, ": parameter ", i, " of param group ", group_index, " is not a point of ",
                      m->name(), ": ", why);
  }
}

// The geometry part of an options archive: the retraction and the manifold's name (the
// manifold itself is structure; load_keeping_manifolds checks the name).
template <typename Options>
void write_geometry(torch::serialize::OutputArchive& archive, const Options& options) {
  archive.write("retraction", c10::IValue(manifolds::to_string(options.retraction())));
  archive.write("manifold", c10::IValue(options.manifold()->name()));
}
template <typename Options>
void read_geometry(torch::serialize::InputArchive& archive, Options& options) {
  c10::IValue value;
  archive.read("retraction", value);
  options.retraction(manifolds::retraction_from_string(value.toStringRef()));
  archive.read("manifold", value);
  options.saved_manifold_name = value.toStringRef();
}

// torch::optim's loader replaces each group's options by the saved ones; the manifold is
// structure, not state, so it is kept (and its saved name must match).
template <typename Options, typename Load>
void load_keeping_manifolds(torch::optim::Optimizer& opt, Load&& load, const char* optimizer) {
  std::vector<manifolds::ManifoldPtr> manifolds_before;
  for (auto& g : opt.param_groups()) manifolds_before.push_back(static_cast<Options&>(g.options()).manifold());
  load();
  for (size_t i = 0; i < opt.param_groups().size(); ++i) {
    auto& options = static_cast<Options&>(opt.param_groups()[i].options());
    const std::string saved = options.saved_manifold_name;
    TORCH_CHECK_VALUE(saved.empty() || saved == manifolds_before[i]->name(), optimizer, ": param group ", i,
                      " was saved on ", saved, " but this optimizer's group is on ", manifolds_before[i]->name());
    options.manifold(manifolds_before[i]);
  }
}

}  // namespace mantra::optim::detail
