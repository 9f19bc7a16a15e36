#include "mantra/optim/riemannian_adam.h"

#include <torch/torch.h>

#include <cmath>

#include "optim/riemannian_common.h"

namespace mantra::optim {

void RiemannianAdamOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(amsgrad);
  detail::write_group_options(archive, *this);
}

void RiemannianAdamOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, amsgrad);
  detail::read_group_options(archive, *this);
}

void RiemannianAdamParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(max_exp_avg_sq);
}

void RiemannianAdamParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, max_exp_avg_sq);
}

RiemannianAdam::RiemannianAdam(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                               RiemannianAdamOptions defaults)
    : Optimizer(param_groups, std::make_unique<RiemannianAdamOptions>(defaults)) {
  TORCH_CHECK_VALUE(defaults.lr() >= 0, "RiemannianAdam: argument 'lr' must be >= 0, got ", defaults.lr());
  TORCH_CHECK_VALUE(defaults.eps() >= 0, "RiemannianAdam: argument 'eps' must be >= 0, got ", defaults.eps());
  const auto [beta1, beta2] = defaults.betas();
  TORCH_CHECK_VALUE(0 <= beta1 && beta1 < 1 && 0 <= beta2 && beta2 < 1,
                    "RiemannianAdam: argument 'betas' must lie in [0, 1), got (", beta1, ", ", beta2, ")");
  TORCH_CHECK_VALUE(defaults.weight_decay() >= 0, "RiemannianAdam: argument 'weight_decay' must be >= 0, got ",
                    defaults.weight_decay());
  detail::check_group_points<RiemannianAdamOptions>(param_groups_, "RiemannianAdam");
}

RiemannianAdamBuffers riemannian_adam_init(const at::Tensor& p, const RiemannianAdamOptions& options) {
  torch::NoGradGuard no_grad;
  const manifolds::Manifold& M = *options.manifold();
  RiemannianAdamBuffers b;
  b.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
  // One second moment per point (per entry on Euclidean tensors).
  b.exp_avg_sq = detail::is_euclidean(options.manifold())
                     ? torch::zeros_like(p, torch::MemoryFormat::Preserve)
                     : detail::per_point(torch::zeros_like(M.inner(p, p, p)), p, M.point_dims());
  if (options.amsgrad()) b.max_exp_avg_sq = torch::zeros_like(b.exp_avg_sq);
  return b;
}

void riemannian_adam_step(const at::Tensor& p, const at::Tensor& grad_in, const RiemannianAdamBuffers& buffers,
                          int64_t step, const RiemannianAdamOptions& options, AdamArithmetic arithmetic) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK_VALUE(!grad_in.is_sparse(), "RiemannianAdam does not support sparse gradients");
  TORCH_CHECK_VALUE(step >= 1, "riemannian_adam_step: argument 'step' must be >= 1, got ", step);
  TORCH_CHECK_VALUE(!options.amsgrad() || buffers.max_exp_avg_sq.defined(),
                    "riemannian_adam_step: amsgrad needs the buffer 'max_exp_avg_sq'");
  const manifolds::Manifold& M = *options.manifold();
  const bool euclidean = detail::is_euclidean(options.manifold());
  const bool python = arithmetic == AdamArithmetic::TorchPython;
  const auto [beta1, beta2] = options.betas();
  const at::Tensor& exp_avg = buffers.exp_avg;
  const at::Tensor& exp_avg_sq = buffers.exp_avg_sq;
  at::Tensor max_exp_avg_sq = buffers.max_exp_avg_sq;
  const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  const double bias_correction2_sqrt = python ? std::pow(bias_correction2, 0.5) : std::sqrt(bias_correction2);
  at::Tensor grad = grad_in;
  if (options.weight_decay() != 0) grad = grad.add(p, options.weight_decay());

  // On Euclidean tensors these are torch's Adam operations, in its order.
  const torch::Tensor rgrad = euclidean ? grad : M.egrad_to_rgrad(p, grad);
  if (python) {
    exp_avg.lerp_(rgrad, 1 - beta1);
  } else {
    exp_avg.mul_(beta1).add_(rgrad, 1 - beta1);
  }
  if (euclidean) {
    exp_avg_sq.mul_(beta2).addcmul_(rgrad, rgrad, 1 - beta2);
  } else {
    exp_avg_sq.mul_(beta2).add_(detail::per_point(M.inner(p, rgrad, rgrad), p, M.point_dims()), 1 - beta2);
  }
  torch::Tensor denom;
  if (options.amsgrad()) {
    torch::max_out(max_exp_avg_sq, exp_avg_sq, max_exp_avg_sq);
    denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options.eps());
  } else {
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options.eps());
  }
  const double step_size = options.lr() / bias_correction1;
  if (euclidean) {
    p.addcdiv_(exp_avg, denom, -step_size);
  } else {
    auto [point, moment] = M.retract_transport(p, exp_avg / denom * (-step_size), exp_avg, options.retraction());
    p.copy_(point);
    exp_avg.copy_(moment);
    if (options.stabilize() > 0 && step % options.stabilize() == 0) {
      p.copy_(M.project(p));
      exp_avg.copy_(M.proj_tangent(p, exp_avg));
    }
  }
}

torch::Tensor RiemannianAdam::step(LossClosure closure) {
  return detail::step_each<RiemannianAdamOptions>(param_groups_, closure, [&](const at::Tensor& p,
                                                                              const RiemannianAdamOptions& options) {
    TORCH_CHECK(!p.grad().is_sparse(), "RiemannianAdam does not support sparse gradients");
    auto& slot = state_[p.unsafeGetTensorImpl()];
    if (!slot) {
      auto s = std::make_unique<RiemannianAdamParamState>();
      RiemannianAdamBuffers b = riemannian_adam_init(p, options);
      s->step(0);
      s->exp_avg(b.exp_avg);
      s->exp_avg_sq(b.exp_avg_sq);
      if (options.amsgrad()) s->max_exp_avg_sq(b.max_exp_avg_sq);
      slot = std::move(s);
    }
    auto& state = static_cast<RiemannianAdamParamState&>(*slot);
    state.step(state.step() + 1);
    riemannian_adam_step(p, p.grad(), {state.exp_avg(), state.exp_avg_sq(), state.max_exp_avg_sq()}, state.step(),
                         options);
  });
}

void RiemannianAdam::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<RiemannianAdamParamState, RiemannianAdamOptions>(archive, *this);
}

void RiemannianAdam::load(torch::serialize::InputArchive& archive) {
  detail::load_keeping_manifolds<RiemannianAdamParamState, RiemannianAdamOptions>(*this, archive, "RiemannianAdam");
}

}  // namespace mantra::optim
