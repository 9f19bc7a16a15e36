#include "mantra/parametrize/parametrization.h"

#include <torch/torch.h>

#include <cmath>

#include "mantra/manifolds/stiefel.h"
#include "mantra/ops.h"
#include "mantra/parametrize/parametrize.h"

namespace mantra::parametrize {

namespace {
// Block-diagonal skew matrix with 2×2 blocks [[0, a], [−a, 0]] (last entry 0 for odd n).
at::Tensor block_skew(const at::Tensor& a, int64_t n) {
  at::Tensor A = at::zeros({n, n}, a.options());
  for (int64_t i = 0; i + 1 < n; i += 2) {
    A[i][i + 1] = a[i / 2];
    A[i + 1][i] = -a[i / 2];
  }
  return A;
}
}  // namespace

ParametrizationImpl::ParametrizationImpl(manifolds::ManifoldPtr manifold, std::vector<int64_t> shape,
                                         ParametrizationOptions options, const at::TensorOptions& tensor_options)
    : ConstraintImpl(std::move(shape)), manifold_(std::move(manifold)), options_(options) {
  TORCH_CHECK_VALUE(manifold_ != nullptr, "Parametrization: argument 'manifold' is null");
  manifold_->check_shape(this->shape(), "shape");
  base = register_buffer("base", manifold_->random(this->shape(), tensor_options));
  v = register_parameter("v", at::zeros(this->shape(), tensor_options));
}

at::Tensor ParametrizationImpl::retract(const at::Tensor& b, const at::Tensor& u) const {
  return manifold_->retract(b, manifold_->proj_tangent(b, u), options_.retraction());
}

void ParametrizationImpl::rebase() {
  torch::NoGradGuard no_grad;
  at::Tensor X = retract(base, v);
  ++rebases_;
  if (options_.reproject_every() > 0 && rebases_ % options_.reproject_every() == 0) X = manifold_->project(X);
  base.copy_(X);
  v.zero_();
}

std::string ParametrizationImpl::check(const at::Tensor& X) const {
  return manifold_->check_point(X.detach(), options_.atol());
}

void ParametrizationImpl::set(const at::Tensor& X) {
  TORCH_CHECK_VALUE(X.defined() && X.sizes() == at::IntArrayRef(shape()), "Parametrization.set: argument 'X' must have shape ",
                    at::IntArrayRef(shape()), ", got ", X.defined() ? X.sizes() : at::IntArrayRef{});
  const std::string why = check(X);
  TORCH_CHECK_VALUE(why.empty(), "Parametrization.set: argument 'X' is not a point of ", manifold_->name(), ": ", why);
  {
    torch::NoGradGuard no_grad;
    base.copy_(X);
    v.zero_();
  }
  changed();
}

// For the rotation inits: the block-diagonal skew logarithm of the sampled point (shape()).
at::Tensor ParametrizationImpl::sample_rotation_log(const std::string& init) const {
  const auto options = base.options();
  const auto* st = dynamic_cast<const manifolds::Stiefel*>(manifold_.get());
  const int64_t n = shape().back();
  TORCH_CHECK_VALUE(st != nullptr && shape().size() >= 2 && shape()[shape().size() - 2] == n,
                    "Parametrization.sample: init '", init, "' needs square matrices on SO(n)/O(n), got ",
                    manifold_->name(), " of shape ", at::IntArrayRef(shape()));
  const at::IntArrayRef batch_dims = at::IntArrayRef(shape()).slice(0, shape().size() - 2);
  const int64_t batch = batch_dims.empty() ? 1 : c10::multiply_integers(batch_dims);
  std::vector<at::Tensor> logs;
  for (int64_t b = 0; b < batch; ++b) {
    // Angles of the 2×2 rotation blocks.
    at::Tensor a;
    if (init == "cayley") {
      // expRNN's Cayley init: s ~ U(0, π/2), block entry −tan(s/2) = −sqrt((1−cos s)/(1+cos s)).
      a = -at::tan(at::rand({n / 2}, options.dtype(at::kDouble)) * (M_PI / 4));
    } else {
      a = (at::rand({n / 2}, options.dtype(at::kDouble)) * 2 - 1) * M_PI;
    }
    logs.push_back(block_skew(a, n));
  }
  return at::stack(logs).view(shape());
}

void ParametrizationImpl::sample(const std::string& init) {
  torch::NoGradGuard no_grad;
  const auto options = base.options();
  at::Tensor X;
  if (init == "uniform") {
    X = manifold_->random(shape(), options);
  } else if (init == "origin") {
    X = manifold_->origin(shape(), options);
  } else if (init == "torus" || init == "henaff" || init == "cayley") {
    X = mantra::expm(sample_rotation_log(init)).to(options.dtype());
  } else {
    TORCH_CHECK_VALUE(false, "Parametrization.sample: argument 'init' must be uniform, origin, torus, henaff or cayley; got '",
                      init, "'");
  }
  base.copy_(X);
  v.zero_();
  changed();
}

void ParametrizationImpl::sample_in_chart(const std::string& init) {
  TORCH_CHECK_VALUE(init == "torus" || init == "henaff" || init == "cayley",
                    "Parametrization.sample_in_chart: argument 'init' must be torus, henaff or cayley; got '", init, "'");
  const auto retraction = options_.retraction() == manifolds::Retraction::Default ? manifold_->retractions().front()
                                                                                  : options_.retraction();
  TORCH_CHECK_VALUE(retraction == manifolds::Retraction::Exp,
                    "Parametrization.sample_in_chart: needs the exponential retraction (triv 'expm'), got ",
                    manifolds::to_string(options_.retraction()));
  torch::NoGradGuard no_grad;
  const at::Tensor L = sample_rotation_log(init);
  base.copy_(manifold_->origin(shape(), base.options()));
  v.copy_(L);
  changed();
}

namespace {
bool wider(at::ScalarType to, at::ScalarType from) { return c10::elementSize(to) > c10::elementSize(from); }
}  // namespace

void ParametrizationImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  const auto before = base.scalar_type();
  torch::nn::Module::to(device, dtype, non_blocking);
  if (wider(dtype, before)) {
    torch::NoGradGuard no_grad;
    base.copy_(manifold_->project(base));
  }
}

void ParametrizationImpl::to(torch::Dtype dtype, bool non_blocking) {
  to(base.device(), dtype, non_blocking);
}

void ParametrizationImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::Parametrization(" << manifold_->name() << ", shape=" << at::IntArrayRef(shape())
         << ", retraction=" << manifolds::to_string(options_.retraction()) << ")";
}

std::vector<std::pair<std::string, Parametrization>> parametrizations(torch::nn::Module& module) {
  std::vector<std::pair<std::string, Parametrization>> out;
  for (const auto& item : module.named_modules()) {
    if (auto p = std::dynamic_pointer_cast<ParametrizationImpl>(item.value())) {
      out.emplace_back(item.key(), Parametrization(p));
    }
  }
  return out;
}

}  // namespace mantra::parametrize
