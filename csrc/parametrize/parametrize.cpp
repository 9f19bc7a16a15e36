#include "mantra/parametrize/parametrize.h"

#include <torch/csrc/autograd/function.h>
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

// The grad_fn of an installed value: the identity, after checking that the value is still
// current. A module's member tensor outlives the step that made it stale, and torch::nn
// modules cannot tell; this node turns every backward through a stale value into an error
// that names the parameter, instead of a wrong gradient.
struct InstalledValueBackward : torch::autograd::Node {
  std::string what;                                 // "parameter 'weight' of torch::nn::LinearImpl"
  std::vector<c10::VariableVersion> counters;       // the constraint's parameters and buffers
  std::vector<uint32_t> versions;                   // their versions at install
  bool tracked = true;                              // installed with its autograd history
  bool released = false;                            // a backward without retain_graph went through

  std::string name() const override { return "mantra::parametrize::InstalledValueBackward"; }
  void release_variables() override { released = true; }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const char* fix =
        " Wrap the module in mantra::nn::Constrained<M> (it recomputes the value in its own forward), or call "
        "mantra::parametrize::refresh(module) (or open a ParametrizationScope(module)) before each forward.";
    TORCH_CHECK(tracked, "mantra::parametrize: the value of ", what,
                " was installed without autograd history (by a refresh under NoGradGuard), so no gradient can "
                "reach its constraint.", fix);
    for (size_t i = 0; i < counters.size(); ++i) {
      TORCH_CHECK(counters[i].current_version() == versions[i], "mantra::parametrize: the value of ", what,
                  " is stale: its constraint's parameters changed (e.g. by an optimizer step) after the value was "
                  "installed, so the forward used the old value.", fix);
    }
    TORCH_CHECK(!released, "mantra::parametrize: the value of ", what,
                " was already backpropagated through (its graph is freed).", fix,
                " Inside a ParametrizationScope the value is computed once: use one scope per forward and backward.");
    return std::move(grads);
  }
};

std::string describe(const ConstraintImpl::Target& t) {
  return "parameter '" + t.name + "' of " + t.owner;
}

// Makes the target (a former leaf parameter) hold W's value, with a grad_fn that checks the
// value is current and then passes the gradient on to W's history. The target's version is
// bumped when the value changes, so a graph that saved the old value raises instead of
// reading the new one; an unchanged value (same parameter versions) keeps the version, so
// several forwards may share one backward.
void install(ConstraintImpl& c, ConstraintImpl::Target& t, const at::Tensor& value) {
  at::Tensor W = value.sizes() != at::IntArrayRef(t.tensor_shape) ? value.reshape(t.tensor_shape) : value;
  auto now = c.versions();
  const bool same = now == t.versions && t.tensor.scalar_type() == W.scalar_type() &&
                    t.tensor.device() == W.device();
  t.tensor.set_data(W.detach());
  if (!same) torch::autograd::impl::bump_version(t.tensor);
  auto node = std::shared_ptr<InstalledValueBackward>(new InstalledValueBackward(), torch::autograd::deleteNode);
  node->what = describe(t);
  for (const auto& p : c.parameters()) {
    node->counters.push_back(torch::autograd::impl::version_counter(p));
    node->versions.push_back(p._version());
  }
  for (const auto& b : c.buffers()) {
    node->counters.push_back(torch::autograd::impl::version_counter(b));
    node->versions.push_back(b._version());
  }
  node->tracked = W.requires_grad();
  if (node->tracked) node->set_next_edges(torch::autograd::collect_next_edges(W));
  node->add_input_metadata(W);
  torch::autograd::impl::set_gradient_edge(t.tensor, torch::autograd::Edge(node, 0));
  t.installed = value;
  t.versions = std::move(now);
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
  ConstraintImpl::Target t;
  t.tensor = target;
  t.tensor_shape = target.sizes().vec();
  t.name = name;
  t.owner = module.name();
  p->target() = std::move(t);
  module.register_module(attachment_name(name), p);
  at::AutoGradMode enable_grad(true);  // the installed value carries its history (parametrize.h)
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
    target.set_data(p->forward().reshape(p->target()->tensor_shape).detach());
  }
  torch::autograd::impl::bump_version(target);
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
  // The scope's cached value is already installed (with the same grad mode): nothing to do.
  if (t->installed.defined() && t->installed.unsafeGetTensorImpl() == W.unsafeGetTensorImpl()) return;
  install(p, *t, W);
}

void refresh(torch::nn::Module& module) {
  for (const auto& item : module.modules()) {
    if (auto c = std::dynamic_pointer_cast<ConstraintImpl>(item)) refresh_target(*c);
  }
}

void with_attached_as_parameters(torch::nn::Module& module, const std::function<void()>& f) {
  std::vector<std::pair<torch::nn::Module*, std::string>> restored;
  for (const auto& owner : module.modules()) {
    for (const auto& child : owner->named_children()) {
      auto c = std::dynamic_pointer_cast<ConstraintImpl>(child.value());
      if (!c || !c->target().has_value() || child.key() != attachment_name(c->target()->name)) continue;
      ParameterAccess::of(*owner).insert(c->target()->name, c->target()->tensor);
      restored.emplace_back(owner.get(), c->target()->name);
    }
  }
  auto erase = [&] {
    for (const auto& r : restored) ParameterAccess::of(*r.first).erase(r.second);
  };
  try {
    f();
  } catch (...) {
    erase();
    throw;
  }
  erase();
}

}  // namespace mantra::parametrize
