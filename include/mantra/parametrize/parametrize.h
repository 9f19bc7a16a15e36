// Attaching a constraint (a Parametrization or a composite constraint) to a parameter of any
// torch::nn module (Linear, Conv2d, RNN weights, …), so that the module's own forward sees
// the constrained weight.
//
// The module keeps its member tensor (e.g. LinearImpl::weight); parametrize() removes it from
// the module's parameters, registers the constraint as a submodule
// ("parametrization_<name>", holding v and the base buffer), and from then on the member
// tensor holds φ(v), installed with its autograd history by refresh(). A torch::nn module
// cannot recompute it by itself, so:
//  - Wrap it: mantra::nn::Constrained<M> (mantra/nn/constrained.h) refreshes in its own
//    forward and is correct with any optimizer, with or without a ParametrizationScope.
//    mantra's own layers (mantra::nn::Linear, OrthogonalRNN) compute their weight in their
//    forward and need nothing either.
//  - A bare module holds the value of the last refresh(model), ParametrizationScope(model),
//    set()/sample() or DynamicTrivialization::step() (which refreshes after each step).
//    Nothing else refreshes it: torch's optimizers and RiemannianSGD/RiemannianAdam (which
//    update manifold-valued tensors, not constraints) do not. A stale value is an error, not
//    a wrong result: a backward through a value whose constraint's parameters changed since
//    it was installed, through a value already backpropagated (its graph freed), or through
//    a value installed under NoGradGuard raises an error naming the parameter; and each
//    install that changes the value bumps the tensor's version, so a graph that saved the
//    old value raises rather than reading the new one. What no library can see is a forward
//    under NoGradGuard of a bare module after a plain optimizer step: evaluate through
//    Constrained<M>, or refresh(model) first.
#pragma once

#include <mantra/parametrize/parametrization.h>

#include <functional>

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

// Recomputes every attached constraint in `module` and installs the values (with autograd
// history when grad mode is on). Within a ParametrizationScope an unchanged value is reused.
void refresh(torch::nn::Module& module);
// The same for one constraint (no-op when it is not attached).
void refresh_target(ConstraintImpl& c);

// Runs f (e.g. a to() of `module`) with each tensor attached in `module` back among its
// owner's parameters, so that conversions reach it and modules that keep their own list of
// weights (torch's RNNs rebuild it in to()) keep it. Constrained<M>::to uses it.
void with_attached_as_parameters(torch::nn::Module& module, const std::function<void()>& f);

}  // namespace mantra::parametrize
