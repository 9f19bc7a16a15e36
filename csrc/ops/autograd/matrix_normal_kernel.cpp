// Autograd for mantra::matrix_normal_sample and mantra::matrix_normal_linear: the forward is the
// traced private op (it also returns the products the backward reuses), the backward is the
// private backward op; both redispatch below autograd so the kernels of the tensors' device run.
// The gradients to A and B are lower triangular: the ops read only tril(A) and tril(B).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

namespace mantra {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor> sample_traced(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                                                 const at::Tensor& E) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_matrix_normal_sample_traced", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&, const at::Tensor&)>();
  return op.call(M, A, B, E);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> sample_backward(const at::Tensor& grad, const at::Tensor& A,
                                                               const at::Tensor& B, const at::Tensor& E,
                                                               const at::Tensor& T, bool grad_E) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_matrix_normal_sample_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, bool)>();
  return op.call(grad, A, B, E, T, grad_E);
}
using T4 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using T6 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
T4 linear_traced(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                 const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_matrix_normal_linear_traced", "")
                       .typed<T4(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                 const at::Tensor&, const std::optional<at::Tensor>&)>();
  return op.call(X, M, A, B, E, bias);
}
T6 linear_backward(const at::Tensor& grad, const at::Tensor& X, const at::Tensor& M, const at::Tensor& A,
                   const at::Tensor& B, const at::Tensor& E, const at::Tensor& P, const at::Tensor& s,
                   const at::Tensor& F, bool grad_X, bool grad_E) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_matrix_normal_linear_backward", "")
                       .typed<T6(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                 const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                 const at::Tensor&, bool, bool)>();
  return op.call(grad, X, M, A, B, E, P, s, F, grad_X, grad_E);
}

class SampleFunction : public torch::autograd::Function<SampleFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                            const at::Tensor& E) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [W, T] = sample_traced(M, A, B, E);
    ctx->save_for_backward({A, B, E, T});
    return W;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "mantra::matrix_normal_sample: double backward (create_graph=True) is not implemented");
    const at::Tensor& G = grads[0];
    if (!G.defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const variable_list s = ctx->get_saved_variables();
    at::AutoDispatchBelowADInplaceOrView guard;
    const bool need_E = ctx->needs_input_grad(3);
    auto [gA, gB, gE] = sample_backward(G, s[0], s[1], s[2], s[3], need_E);
    return {G, gA, gB, need_E ? gE : at::Tensor()};
  }
};

class LinearFunction : public torch::autograd::Function<LinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& X, const at::Tensor& M, const at::Tensor& A,
                            const at::Tensor& B, const at::Tensor& E, const std::optional<at::Tensor>& bias) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [O, P, s, F] = linear_traced(X, M, A, B, E, bias);
    ctx->save_for_backward({X, M, A, B, E, P, s, F});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return O;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "mantra::matrix_normal_linear: double backward (create_graph=True) is not implemented");
    const at::Tensor& G = grads[0];
    if (!G.defined()) return variable_list(6);
    const variable_list v = ctx->get_saved_variables();
    at::AutoDispatchBelowADInplaceOrView guard;
    const bool need_X = ctx->needs_input_grad(0), need_E = ctx->needs_input_grad(4);
    auto [gX, gM, gA, gB, gE, gb] = linear_backward(G, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], need_X, need_E);
    if (!ctx->saved_data["has_bias"].toBool()) gb = at::Tensor();
    return {need_X ? gX : at::Tensor(), gM, gA, gB, need_E ? gE : at::Tensor(), gb};
  }
};

at::Tensor sample_autograd(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  return SampleFunction::apply(M, A, B, E);
}
at::Tensor linear_autograd(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                           const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  return LinearFunction::apply(X, M, A, B, E, bias);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, Autograd, m) {
  m.impl("matrix_normal_sample", &mantra::sample_autograd);
  m.impl("matrix_normal_linear", &mantra::linear_autograd);
  m.impl("_matrix_normal_sample_traced", torch::autograd::autogradNotImplementedFallback());
  m.impl("_matrix_normal_sample_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("_matrix_normal_linear_traced", torch::autograd::autogradNotImplementedFallback());
  m.impl("_matrix_normal_linear_backward", torch::autograd::autogradNotImplementedFallback());
}
