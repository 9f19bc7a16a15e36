// Attaching a constraint (a Parametrization or a composite constraint) to a parameter of any
// torch::nn module (Linear, Conv2d, RNN weights, …), so that the module's own forward sees
// the constrained weight.
//
// The module keeps its member tensor (e.g. LinearImpl::weight); parametrize() removes it from
// the module's parameters, registers the constraint as a submodule
// ("parametrization_<name>", holding v and the base buffer), and from then on the member
// tensor holds φ(v) together with its autograd history, installed by refresh(). refresh()
// runs when a ParametrizationScope(module) is made, after set()/sample(), and after every
// step of mantra's optimizers (DynamicTrivialization, RiemannianSGD/Adam). With any other
// optimizer, make a ParametrizationScope(model) (or call refresh(model)) before each forward:
// the installed value is the one of the last refresh.
#pragma once

#include <mantra/parametrize/parametrization.h>

namespace mantra::parametrize {

struct ParametrizeOptions {
  // Constrain the tensor viewed as (size(0), rest) (e.g. a conv kernel as one matrix)
  // instead of each matrix of its last two dimensions.
  TORCH_ARG(bool, flatten) = false;
};

// Constrains `module`'s parameter `name` by c. If the current value already satisfies the
// constraint it is kept; otherwise c keeps its own (sampled) value.
void attach(torch::nn::Module& module, const std::string& name, std::shared_ptr<ConstraintImpl> c,
            ParametrizeOptions options = {});
// (Holder: a module holder of a constraint, e.g. Parametrization or Spectral.)
template <typename Holder, typename = decltype(std::declval<Holder&>().ptr())>
Holder parametrize(torch::nn::Module& module, const std::string& name, Holder c, ParametrizeOptions options = {}) {
  attach(module, name, c.ptr(), options);
  return c;
}
// Builds the Parametrization from a manifold (shape, dtype and device from the parameter).
Parametrization parametrize(torch::nn::Module& module, const std::string& name, manifolds::ManifoldPtr manifold,
                            ParametrizationOptions options = {}, ParametrizeOptions attach = {});

// The constraint attached to `module`'s `name`, or an empty holder.
Constraint constraint_of(torch::nn::Module& module, const std::string& name);
bool is_parametrized(torch::nn::Module& module, const std::string& name);

// Turns `name` back into an ordinary parameter holding the current constrained value.
void remove_parametrization(torch::nn::Module& module, const std::string& name);

// Recomputes every attached constraint in `module` and installs the values.
void refresh(torch::nn::Module& module);
// The same for one constraint (no-op when it is not attached).
void refresh_target(ConstraintImpl& c);

}  // namespace mantra::parametrize
