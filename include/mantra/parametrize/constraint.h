// A constraint is a module whose forward() returns a constrained tensor of a fixed shape,
// computed from unconstrained parameters. Parametrization (a manifold trivialization) is the
// basic one; composite constraints (low rank U·diag(f(s))·Vᵀ, …) hold Parametrizations.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mantra::parametrize {

class ConstraintImpl : public torch::nn::Module {
 public:
  explicit ConstraintImpl(std::vector<int64_t> shape) : shape_(std::move(shape)) {}

  // The constrained tensor. Inside a ParametrizationScope it is computed once and reused
  // until one of this constraint's parameters or buffers changes.
  at::Tensor forward();
  // The versions of this constraint's parameters and buffers (recursively): equal versions
  // mean an equal value of forward().
  std::vector<std::pair<const void*, uint32_t>> versions();
  // Makes X the current value; X that violates the constraint is rejected with the reason.
  virtual void set(const at::Tensor& X) = 0;
  // Re-initializes (init names depend on the constraint; "uniform" always exists).
  virtual void sample(const std::string& init = "uniform") = 0;
  // Why X violates the constraint (within the constraint's tolerance), or "".
  virtual std::string check(const at::Tensor& X) const = 0;
  // Attaching to a parameter whose value is `current`: keeps it when it satisfies the
  // constraint (functional::keep_on_attach), otherwise the constraint's own value stays.
  virtual void attach_from(const at::Tensor& current);

  const std::vector<int64_t>& shape() const { return shape_; }

  // Set by parametrize(): the module tensor this constraint feeds (see parametrize.h).
  struct Target {
    at::Tensor tensor;                  // shares its TensorImpl with the module's member
    std::vector<int64_t> tensor_shape;  // the module's shape (differs when flattened)
    std::string name;
    std::string owner;  // the module's name(), for error messages
    // Set by each install: the value forward() returned, and the versions of this
    // constraint's parameters and buffers it was computed from.
    at::Tensor installed;
    std::vector<std::pair<const void*, uint32_t>> versions;
  };
  std::optional<Target>& target() { return target_; }

 protected:
  // The map from the parameters to the constrained tensor.
  virtual at::Tensor compute() = 0;
  // Call after changing parameters outside an optimizer step (drops the cache, refreshes the
  // attached module tensor).
  void changed();

 private:

  std::vector<int64_t> shape_;
  std::optional<Target> target_;
  at::Tensor cached_;
  int64_t cached_scope_ = -1;
  bool cached_grad_mode_ = false;
  std::vector<std::pair<const void*, uint32_t>> cached_versions_;
};

TORCH_MODULE(Constraint);

// A cache, never needed for correctness: while alive, each constraint computes its map at
// most once per change of its parameters, however many times the weight is used (RNN time
// steps, shared layers, a Constrained module called per step). Constructing one with a module
// also refreshes the tensors attached to it by parametrize(). The cached value carries one
// autograd graph, so a scope spans one forward and its backward: open a new one per step.
class ParametrizationScope {
 public:
  ParametrizationScope();
  explicit ParametrizationScope(torch::nn::Module& module);
  ~ParametrizationScope();
  ParametrizationScope(const ParametrizationScope&) = delete;
  ParametrizationScope& operator=(const ParametrizationScope&) = delete;

  static bool active();
  static int64_t current_id();
};

}  // namespace mantra::parametrize
