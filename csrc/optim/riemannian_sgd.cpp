#include "mantra/optim/riemannian_sgd.h"

#include <torch/torch.h>

#include "optim/riemannian_common.h"

namespace mantra::optim {

void RiemannianSGDOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(dampening);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  detail::write_group_options(archive, *this);
}

void RiemannianSGDOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, dampening);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
  detail::read_group_options(archive, *this);
}

void RiemannianSGDParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void RiemannianSGDParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

RiemannianSGD::RiemannianSGD(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                             RiemannianSGDOptions defaults)
    : Optimizer(param_groups, std::make_unique<RiemannianSGDOptions>(defaults)) {
  TORCH_CHECK_VALUE(defaults.lr() >= 0, "RiemannianSGD: argument 'lr' must be >= 0, got ", defaults.lr());
  TORCH_CHECK_VALUE(defaults.momentum() >= 0, "RiemannianSGD: argument 'momentum' must be >= 0, got ",
                    defaults.momentum());
  TORCH_CHECK_VALUE(defaults.weight_decay() >= 0, "RiemannianSGD: argument 'weight_decay' must be >= 0, got ",
                    defaults.weight_decay());
  TORCH_CHECK_VALUE(!defaults.nesterov() || (defaults.momentum() > 0 && defaults.dampening() == 0),
                    "RiemannianSGD: argument 'nesterov' requires momentum > 0 and dampening = 0");
  detail::check_group_points<RiemannianSGDOptions>(param_groups_, "RiemannianSGD");
}

at::Tensor riemannian_sgd_step(const at::Tensor& p, const at::Tensor& grad, at::Tensor buf, int64_t step,
                               const RiemannianSGDOptions& options) {
  torch::NoGradGuard no_grad;
  const manifolds::Manifold& M = *options.manifold();
  const bool euclidean = detail::is_euclidean(options.manifold());
  const double momentum = options.momentum();
  // On Euclidean tensors these are torch's SGD operations, in its order.
  torch::Tensor d_p = grad;
  if (options.weight_decay() != 0) d_p = d_p.add(p, options.weight_decay());
  torch::Tensor rgrad = euclidean ? d_p : M.egrad_to_rgrad(p, d_p);
  torch::Tensor direction = rgrad;
  if (momentum != 0) {
    if (!buf.defined()) {
      buf = torch::clone(rgrad).detach();
    } else {
      buf.mul_(momentum).add_(rgrad, 1 - options.dampening());
    }
    direction = options.nesterov() ? rgrad.add(buf, momentum) : buf;
  }
  if (euclidean) {
    p.add_(direction, -options.lr());
    return buf;
  }
  if (momentum != 0) {
    auto [point, moved] = M.retract_transport(p, direction * (-options.lr()), buf, options.retraction());
    p.copy_(point);
    buf.copy_(moved);
  } else {
    p.copy_(M.retract(p, direction * (-options.lr()), options.retraction()));
  }
  if (options.stabilize() > 0 && step % options.stabilize() == 0) {
    p.copy_(M.project(p));
    if (momentum != 0) buf.copy_(M.proj_tangent(p, buf));
  }
  return buf;
}

torch::Tensor RiemannianSGD::step(LossClosure closure) {
  return detail::step_each<RiemannianSGDOptions>(param_groups_, closure, [&](const at::Tensor& p,
                                                                             const RiemannianSGDOptions& options) {
    auto& slot = state_[p.unsafeGetTensorImpl()];
    if (!slot) slot = std::make_unique<RiemannianSGDParamState>();
    auto& state = static_cast<RiemannianSGDParamState&>(*slot);
    state.step(state.step() + 1);
    at::Tensor buf = riemannian_sgd_step(p, p.grad(), state.momentum_buffer(), state.step(), options);
    if (buf.defined()) state.momentum_buffer(buf);
  });
}

void RiemannianSGD::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<RiemannianSGDParamState, RiemannianSGDOptions>(archive, *this);
}

void RiemannianSGD::load(torch::serialize::InputArchive& archive) {
  detail::load_keeping_manifolds<RiemannianSGDParamState, RiemannianSGDOptions>(*this, archive, "RiemannianSGD");
}

}  // namespace mantra::optim
