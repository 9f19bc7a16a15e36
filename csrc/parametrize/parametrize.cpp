#include "mantra/parametrize/parametrize.h"

#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <sstream>

namespace mantra::parametrize {

namespace {

// torch::nn::Module keeps its parameters in a protected dictionary; naming it through a
// derived class is the standard-conforming way to reach it for any module.
struct ParameterAccess : torch::nn::Module {
  static torch::OrderedDict<std::string, at::Tensor>& of(torch::nn::Module& m) {
    return m.*(&ParameterAccess::parameters_);
  }
};

std::string attachment_name(const std::string& name) { return "parametrization_" + name; }

// Makes `target` (a former leaf parameter) hold W's value and W's autograd history, so a
// module that reads `target` differentiates through W into the parametrization.
void install(at::Tensor& target, const at::Tensor& W) {
  target.set_data(W.detach());
  if (W.requires_grad()) {
    torch::autograd::impl::set_gradient_edge(target, torch::autograd::impl::gradient_edge(W));
  } else {
    torch::autograd::impl::set_gradient_edge(target, torch::autograd::Edge());
  }
}

}  // namespace

void attach(torch::nn::Module& module, const std::string& name, std::shared_ptr<ConstraintImpl> p,
            ParametrizeOptions options) {
  TORCH_CHECK_VALUE(p != nullptr, "parametrize: argument 'constraint' is null");
  auto& params = ParameterAccess::of(module);
  if (!params.contains(name)) {
    std::ostringstream names;
    for (const auto& k : params.keys()) names << (names.tellp() ? ", " : "") << k;
    TORCH_CHECK_VALUE(!is_parametrized(module, name), "parametrize: '", name, "' of ", module.name(),
                      " is already parametrized");
    TORCH_CHECK_VALUE(false, "parametrize: argument 'name': ", module.name(), " has no parameter '", name,
                      "' (its parameters: ", names.str(), ")");
  }
  TORCH_CHECK_VALUE(!p->target().has_value(), "parametrize: argument 'constraint' is already attached to '",
                    p->target()->name, "'");
  at::Tensor target = params[name];
  std::vector<int64_t> shape = target.sizes().vec();
  if (options.flatten()) {
    TORCH_CHECK_VALUE(target.dim() >= 2, "parametrize: flatten needs a parameter with at least 2 dimensions, '", name,
                      "' has shape ", target.sizes());
    shape = {target.size(0), target.numel() / std::max<int64_t>(target.size(0), 1)};
  }
  TORCH_CHECK_VALUE(p->shape() == shape, "parametrize: argument 'constraint' constrains shape ", at::IntArrayRef(p->shape()),
                    " but '", name, "' ", options.flatten() ? "flattened " : "", "has shape ", at::IntArrayRef(shape));
  {
    torch::NoGradGuard no_grad;
    p->to(target.device(), target.scalar_type());
    const at::Tensor current = target.detach().reshape(shape);
    p->attach_from(current);
  }
  params.erase(name);
  target.requires_grad_(false);  // the tensor now carries W's history, not a leaf's
  p->target() = ParametrizationImpl::Target{target, target.sizes().vec(), name};
  module.register_module(attachment_name(name), p);
  refresh_target(*p);
}

Parametrization parametrize(torch::nn::Module& module, const std::string& name, manifolds::ManifoldPtr manifold,
                            ParametrizationOptions options, ParametrizeOptions attach_options) {
  auto& params = ParameterAccess::of(module);
  TORCH_CHECK_VALUE(params.contains(name), "parametrize: argument 'name': ", module.name(), " has no parameter '",
                    name, "'");
  const at::Tensor& t = params[name];
  std::vector<int64_t> shape = t.sizes().vec();
  if (attach_options.flatten() && t.dim() >= 2) shape = {t.size(0), t.numel() / std::max<int64_t>(t.size(0), 1)};
  Parametrization p(std::move(manifold), shape, options, t.options());
  attach(module, name, p.ptr(), attach_options);
  return p;
}

Constraint constraint_of(torch::nn::Module& module, const std::string& name) {
  for (const auto& child : module.named_children()) {
    if (child.key() == attachment_name(name)) {
      if (auto p = std::dynamic_pointer_cast<ConstraintImpl>(child.value())) return Constraint(p);
    }
  }
  return Constraint(nullptr);
}

bool is_parametrized(torch::nn::Module& module, const std::string& name) {
  return !constraint_of(module, name).is_empty();
}

void remove_parametrization(torch::nn::Module& module, const std::string& name) {
  Constraint p = constraint_of(module, name);
  TORCH_CHECK_VALUE(!p.is_empty(), "remove_parametrization: argument 'name': '", name, "' of ", module.name(),
                    " is not parametrized");
  at::Tensor target = p->target()->tensor;
  {
    torch::NoGradGuard no_grad;
    install(target, p->forward().reshape(p->target()->tensor_shape));
  }
  torch::autograd::impl::set_gradient_edge(target, torch::autograd::Edge());
  target.requires_grad_(true);
  ParameterAccess::of(module).insert(name, target);
  module.unregister_module(attachment_name(name));
  p->target().reset();
}

void refresh_target(ConstraintImpl& p) {
  auto& t = p.target();
  if (!t.has_value()) return;
  at::Tensor W = p.forward();
  if (W.sizes() != at::IntArrayRef(t->tensor_shape)) W = W.reshape(t->tensor_shape);
  install(t->tensor, W);
}

void refresh(torch::nn::Module& module) {
  for (const auto& item : module.modules()) {
    if (auto c = std::dynamic_pointer_cast<ConstraintImpl>(item)) refresh_target(*c);
  }
}

}  // namespace mantra::parametrize
