// Attaching a Parametrization to a parameter of any torch::nn module (Linear, Conv2d, RNN
// weights, …), so that the module's own forward sees the constrained weight.
//
// The module keeps its member tensor (e.g. LinearImpl::weight); parametrize() removes it from
// the module's parameters, registers the Parametrization as a submodule
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

// Constrains `module`'s parameter `name` by p. If the current value is already a point of
// p's manifold it is kept; otherwise p keeps its own (sampled) point. Returns p.
Parametrization parametrize(torch::nn::Module& module, const std::string& name, Parametrization p,
                            ParametrizeOptions options = {});
// Builds the Parametrization from a manifold (shape, dtype and device from the parameter).
Parametrization parametrize(torch::nn::Module& module, const std::string& name, manifolds::ManifoldPtr manifold,
                            ParametrizationOptions options = {}, ParametrizeOptions attach = {});

// The parametrization attached to `module`'s `name`, or an empty holder.
Parametrization parametrization_of(torch::nn::Module& module, const std::string& name);
bool is_parametrized(torch::nn::Module& module, const std::string& name);

// Turns `name` back into an ordinary parameter holding the current constrained value.
void remove_parametrization(torch::nn::Module& module, const std::string& name);

// Recomputes φ(v) for every attached parametrization in `module` and installs it.
void refresh(torch::nn::Module& module);
// The same for one parametrization (no-op when it is not attached).
void refresh_target(ParametrizationImpl& p);

}  // namespace mantra::parametrize
