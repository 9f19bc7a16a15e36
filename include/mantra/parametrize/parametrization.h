// Trivializations: a constrained weight is φ(v) = R_base(ι_base(v)), a retraction of the
// manifold applied at a base point to the tangent vector an unconstrained tensor v names
// (Manifold::chart_vector: its tangent projection, or for SPD base^{1/2} sym(v) base^{1/2}).
// rebase() moves the base to the current point and zeroes v (dynamic trivialization); with
// base = identity and no rebase it is a static trivialization (e.g. expRNN's exp(A)).
#pragma once

#include <mantra/manifolds/manifold.h>
#include <mantra/parametrize/constraint.h>
#include <mantra/parametrize/functional.h>

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
  // The value is scale · point (e.g. a sphere of this radius).
  TORCH_ARG(double, scale) = 1.0;
};

class ParametrizationImpl : public ConstraintImpl {
 public:
  // A parametrization of tensors of `shape` (batch dims first) on `manifold`; starts at a
  // random point (init "uniform").
  ParametrizationImpl(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape,
                      ParametrizationOptions options = {},
                      const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat));

  // Dynamic trivialization: base ← forward(), v ← 0 (the point does not move).
  void rebase();
  // Makes X the current point (base ← X, v ← 0). X off the manifold (beyond options.atol) is
  // rejected with the manifold's explanation.
  void set(const at::Tensor& X) override;
  // Samples a new point: "uniform" (Haar/uniform), "origin", and for square SO(n)/O(n):
  // "torus" / "henaff" (block rotations with angles U(−π, π)), "cayley" (expRNN's Cayley init).
  void sample(const std::string& init = "uniform") override;
  // Static trivialization at the identity, as expRNN: base ← I and v ← L, the block-skew
  // logarithm drawn by init "torus"/"henaff"/"cayley", so that the point is exp(L) and the
  // optimizer trains L itself. Needs square SO(n)/O(n) and the exponential retraction.
  void sample_in_chart(const std::string& init);
  std::string check(const at::Tensor& X) const override;

  const manifolds::Manifold& manifold() const { return *manifold_; }
  manifolds::ManifoldPtr manifold_ptr() const { return manifold_; }
  const ParametrizationOptions& options() const { return options_; }
  int64_t rebase_count() const { return rebases_; }
  // Restores the count (it schedules the re-projections) when resuming from a checkpoint.
  void set_rebase_count(int64_t count) { rebases_ = count; }

  void pretty_print(std::ostream& stream) const override;

  // What this parametrization is (manifold spec, retraction, scale): saved with the state, and
  // a state saved from another one is refused on load.
  std::string identity() const;
  // torch::save / torch::load: load refuses a state from another parametrization, or whose
  // base is not a point of the manifold (then nothing changes), and re-projects a base saved
  // in a narrower dtype.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Converting to a wider dtype re-projects the base, so that a float32 point becomes
  // accurate to float64 rather than keeping float32's distance from the manifold.
  using torch::nn::Module::to;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;

  at::Tensor base;  // buffer: the base point
  at::Tensor v;     // parameter: unconstrained, ambient shape

 protected:
  // A parametrization whose base and v have `chart_shape` (the value has `shape`).
  ParametrizationImpl(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape, std::vector<int64_t> chart_shape,
                      ParametrizationOptions options, const at::TensorOptions& tensor_options);
  // The chart hook: the manifold point given the base and v (rebase() moves the base there).
  // Override for maps that are not a manifold retraction of P_base(v).
  virtual at::Tensor retract(const at::Tensor& base, const at::Tensor& v) const;
  // The value of a chart point (default: scale · point).
  virtual at::Tensor output(const at::Tensor& point) const;
  at::Tensor compute() override { return output(retract(base, v)); }

 private:
  manifolds::ManifoldPtr manifold_;
  ParametrizationOptions options_;
  int64_t rebases_ = 0;
};

// geotorch's custom trivialization: X = (B · triv(A))[:, :k] for an orthogonal n×n base B
// (n the larger side; transposed for wide X) and A the skew matrix of v's strictly lower
// triangle, v of shape (…, n, n). triv maps skew matrices to orthogonal ones with triv(0) = I
// (so that set() and rebase() keep the point). rebase() moves B to B · triv(A).
class CallableTrivializationImpl : public ParametrizationImpl {
 public:
  CallableTrivializationImpl(std::vector<int64_t> shape, TensorFunction triv, bool special,
                             ParametrizationOptions options = {},
                             const at::TensorOptions& tensor_options = at::TensorOptions().dtype(at::kFloat));
  void set(const at::Tensor& X) override;
  void sample(const std::string& init = "uniform") override;
  std::string check(const at::Tensor& X) const override;
  void pretty_print(std::ostream& stream) const override;

 protected:
  // base · triv(A): the square point rebase() moves the base to.
  at::Tensor retract(const at::Tensor& base, const at::Tensor& v) const override;
  at::Tensor compute() override;

 private:
  TensorFunction triv_;
  manifolds::ManifoldPtr frames_;  // St(n, k) or SO(n): where the values live
  int64_t k_;
  bool wide_;
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

// Every Parametrization in `module` (recursively), with its path.
std::vector<std::pair<std::string, Parametrization>> parametrizations(torch::nn::Module& module);

}  // namespace mantra::parametrize
