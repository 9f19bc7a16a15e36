// Trivializations: a constrained weight is φ(v) = R_base(P_base(v)), a retraction of the
// manifold applied at a base point to the tangent projection of an unconstrained tensor v.
// rebase() moves the base to the current point and zeroes v (dynamic trivialization); with
// base = identity and no rebase it is a static trivialization (e.g. expRNN's exp(A)).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <mantra/manifolds/manifold.h>

#include <optional>
#include <string>
#include <vector>

namespace mantra::parametrize {

struct ParametrizationOptions {
  // The retraction φ uses (Default: the manifold's own default).
  TORCH_ARG(manifolds::Retraction, retraction) = manifolds::Retraction::Default;
  // Re-project the base onto the manifold every this many rebases, against rounding drift
  // (0: never).
  TORCH_ARG(int64_t, reproject_every) = 100;
  // Tolerance of set(): a point farther than this from the manifold is rejected.
  TORCH_ARG(double, atol) = 1e-5;
};

class ParametrizationImpl : public torch::nn::Module {
 public:
  // A parametrization of tensors of `shape` (batch dims first) on `manifold`; starts at a
  // random point (init "uniform").
  ParametrizationImpl(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape,
                      ParametrizationOptions options = {},
                      const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat));

  // The constrained point. Inside a ParametrizationScope it is computed once and reused
  // until v or base change.
  at::Tensor forward();
  // Dynamic trivialization: base ← forward(), v ← 0 (the point does not move).
  void rebase();
  // Makes X the current point (base ← X, v ← 0). X off the manifold (beyond options.atol) is
  // rejected with the manifold's explanation.
  void set(const at::Tensor& X);
  // Samples a new point: "uniform" (Haar/uniform), "origin", and for square SO(n)/O(n):
  // "torus" / "henaff" (block rotations with angles U(−π, π)), "cayley" (expRNN's Cayley init).
  void sample(const std::string& init = "uniform");

  const manifolds::Manifold& manifold() const { return *manifold_; }
  manifolds::ManifoldPtr manifold_ptr() const { return manifold_; }
  const ParametrizationOptions& options() const { return options_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rebase_count() const { return rebases_; }

  void pretty_print(std::ostream& stream) const override;

  // Set by parametrize(): the module tensor this parametrization feeds (see parametrize.h).
  struct Target {
    at::Tensor tensor;                  // shares its TensorImpl with the module's member
    std::vector<int64_t> tensor_shape;  // the module's shape (differs when flattened)
    std::string name;
  };
  std::optional<Target>& target() { return target_; }

  at::Tensor base;  // buffer: the base point
  at::Tensor v;     // parameter: unconstrained, ambient shape

 protected:
  // The retraction hook: φ(v) given the base. Override for maps that are not a manifold
  // retraction of P_base(v).
  virtual at::Tensor retract(const at::Tensor& base, const at::Tensor& v) const;

 private:
  manifolds::ManifoldPtr manifold_;
  std::vector<int64_t> shape_;
  ParametrizationOptions options_;
  int64_t rebases_ = 0;
  std::optional<Target> target_;
  // Cache of forward() within a scope, valid while the versions match.
  at::Tensor cached_;
  int64_t cached_scope_ = -1;
  uint32_t cached_v_version_ = 0, cached_base_version_ = 0;
};

// Holder (TORCH_MODULE pattern), with a constructor that accepts braced shapes.
class Parametrization : public torch::nn::ModuleHolder<ParametrizationImpl> {
 public:
  using torch::nn::ModuleHolder<ParametrizationImpl>::ModuleHolder;
  Parametrization(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape, ParametrizationOptions options = {},
                  const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat))
      : ModuleHolder(std::make_shared<ParametrizationImpl>(std::move(manifold), std::move(shape), options,
                                                           tensor_options)) {}
};

// While alive, each parametrization computes its map at most once (per change of v/base),
// however many times the weight is used (RNN time steps, shared layers). Constructing one
// with a module also refreshes the weights attached to it by parametrize().
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

// Every Parametrization in `module` (recursively), with its path.
std::vector<std::pair<std::string, Parametrization>> parametrizations(torch::nn::Module& module);

}  // namespace mantra::parametrize
