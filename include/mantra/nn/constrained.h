// mantra::nn::Constrained<M>: a torch::nn module M (Linear, Conv2d, LSTM, …) whose constrained
// parameters are recomputed in the wrapper's own forward, so the module never computes with a
// stale weight, with or without a ParametrizationScope (which is then only a cache).
//
//   mantra::nn::Constrained<torch::nn::Conv2d> conv(torch::nn::Conv2dOptions(16, 32, 3));
//   mantra::parametrize::parametrize(*conv->module, "weight", std::make_shared<manifolds::Stiefel>(),
//                                    {}, mantra::parametrize::ParametrizeOptions().flatten(true));
//   torch::optim::Adam adam(conv->parameters());  // v and the bias (the base is a buffer)
//   auto y = conv(x);                              // refreshes, then conv->module->forward(x)
//
// M is a module holder (torch::nn::Linear, or any TORCH_MODULE). Attach constraints to
// `module` with the mantra::parametrize functions (parametrize(), orthogonal(), …), before
// or after wrapping. parameters()/buffers() include the constraints' v and base
// ("module.parametrization_weight.v"), so torch::save/torch::load round-trip them. Not
// Cloneable: clone() (and so torch::nn::parallel::data_parallel) is not supported.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <mantra/parametrize/parametrize.h>

#include <ostream>
#include <type_traits>
#include <utility>

namespace mantra::nn {

namespace detail {

// Whether Impl declares default forward arguments (FORWARD_HAS_DEFAULT_ARGS overrides
// _forward_has_default_args below Module). Never instantiated.
template <typename Impl>
struct Probe : Impl {
  using type = decltype(&Probe::_forward_has_default_args);
};
template <typename Impl, typename = void>
struct has_default_forward_arguments : std::true_type {};
template <typename Impl>
struct has_default_forward_arguments<Impl, std::enable_if_t<std::is_class_v<Impl> && !std::is_final_v<Impl>>>
    : std::bool_constant<!std::is_same_v<typename Probe<Impl>::type, bool (torch::nn::Module::*)()>> {};

// The type of &Impl::forward when it is one non-template function without default
// arguments (then Constrained<M> can live in a Sequential/AnyModule); void otherwise.
template <typename Impl, typename = void>
struct single_forward {
  using type = void;
};
template <typename Impl>
struct single_forward<Impl, std::void_t<decltype(&Impl::forward)>> {
  using type = std::conditional_t<has_default_forward_arguments<Impl>::value, void, decltype(&Impl::forward)>;
};

// forward(): refresh the constraints, then the module's forward with the same arguments.
// Generic: a template (any overload, default arguments).
template <typename Derived, typename Signature>
class ConstrainedForward {
 public:
  template <typename... Args>
  decltype(auto) forward(Args&&... args) {
    auto& self = static_cast<Derived&>(*this);
    self.refresh();
    return self.module->forward(std::forward<Args>(args)...);
  }
};
// One forward without default arguments: the same signature, as AnyModule needs.
template <typename Derived, typename Return, typename Class, typename... Args>
class ConstrainedForward<Derived, Return (Class::*)(Args...)> {
 public:
  Return forward(Args... args) {
    auto& self = static_cast<Derived&>(*this);
    self.refresh();
    return self.module->forward(std::forward<Args>(args)...);
  }
};

}  // namespace detail

template <typename M>
class ConstrainedImpl
    : public torch::nn::Module,
      public detail::ConstrainedForward<ConstrainedImpl<M>,
                                        typename detail::single_forward<typename M::ContainedType>::type> {
 public:
  // Builds M from the arguments (its options), or wraps an existing holder M (sharing it).
  template <typename... Args,
            typename = std::enable_if_t<!(sizeof...(Args) == 1 &&
                                          (std::is_same_v<std::decay_t<Args>, ConstrainedImpl> || ...))>>
  explicit ConstrainedImpl(Args&&... args) : module(std::forward<Args>(args)...) {
    register_module("module", module.ptr());
  }

  // Installs the current value of every constraint attached in `module` (recursively) into
  // its tensor (parametrize::refresh). forward() calls it first; call it yourself only to
  // read the module's tensors (e.g. module->weight) between forwards.
  void refresh() { parametrize::refresh(*module); }

  void pretty_print(std::ostream& stream) const override { stream << "mantra::nn::Constrained"; }

  // Converts the module with its attached tensors (torch's RNNs rebuild their weight list in
  // to(); the attached ones stay in it). The next forward installs values in the new type.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override {
    parametrize::with_attached_as_parameters(*module, [&] { module->to(device, dtype, non_blocking); });
  }
  void to(torch::Dtype dtype, bool non_blocking = false) override {
    parametrize::with_attached_as_parameters(*module, [&] { module->to(dtype, non_blocking); });
  }
  void to(torch::Device device, bool non_blocking = false) override {
    parametrize::with_attached_as_parameters(*module, [&] { module->to(device, non_blocking); });
  }

  M module;
};

// The holder, as TORCH_MODULE(Constrained) would make it, for any M.
template <typename M>
class Constrained : public torch::nn::ModuleHolder<ConstrainedImpl<M>> {
 public:
  using torch::nn::ModuleHolder<ConstrainedImpl<M>>::ModuleHolder;
  using Impl = ConstrainedImpl<M>;
  // ModuleHolder's operator() needs a non-template forward; this one takes either.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) {
    return this->get()->forward(std::forward<Args>(args)...);
  }
};

}  // namespace mantra::nn
