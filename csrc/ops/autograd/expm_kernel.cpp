// Autograd for mantra::expm. Both passes redispatch below autograd, so the kernels of the
// tensors' device run. On concrete tensors the forward is mantra::_expm_traced, which also
// returns the intermediates of the scaling-and-squaring evaluation; the backward is
// mantra::_expm_traced_backward, only the adjoint sweep over them (about twice the forward's
// products, no recomputation). On fake/meta/functional tensors (torch.compile, opcheck) the
// trace's length is unknown, so the passes are expm and expm_backward (static shapes).
// A itself is saved (with its version counter), so changing it in place before backward is an
// error, as for torch's own operators. With create_graph the backward is itself differentiable
// (the block-triangular form of the Fréchet derivative), so double backward works.
#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "mantra/ops.h"
#include "ops/expm_algorithm.h"

namespace mantra {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A real CPU/CUDA tensor, and no Python dispatch mode (fake tensors, cross-reference checks)
// or functionalization that would see the trace's data-dependent shapes.
bool is_concrete(const at::Tensor& t) {
  constexpr auto symbolic = c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize,
                                                 c10::DispatchKey::PythonTLSSnapshot});
  return (t.is_cpu() || t.is_cuda()) && !t.key_set().has_any(symbolic) &&
         !c10::impl::tls_local_dispatch_key_set().included_.has_any(symbolic);
}

class ExpmFunction : public torch::autograd::Function<ExpmFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& A) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const bool traced = is_concrete(A) && A.numel() > 0;
    ctx->saved_data["traced"] = traced;
    if (!traced) {
      ctx->save_for_backward({A});
      return mantra::expm(A);
    }
    auto [E, trace] = detail::expm_traced(A);
    trace.insert(trace.begin(), A);
    ctx->save_for_backward(trace);
    return E;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {at::Tensor()};
    // Unpacking checks the saved tensors' versions: an in-place change of A raises here.
    const variable_list saved = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) {
      // create_graph (double backward, e.g. Gauss–Newton products): the adjoint L_exp(Aᵀ, G) is
      // the top-right block of expm([[Aᵀ, G], [0, Aᵀ]]), differentiable through this operator's
      // own first-order autograd (8× the flops of the plain backward, only on this path).
      const at::Tensor At = saved[0].mT();
      const int64_t n = At.size(-1);
      const at::Tensor big =
          at::cat({at::cat({At, grad}, -1), at::cat({at::zeros_like(At), At}, -1)}, -2);
      return {mantra::expm(big).narrow(-2, 0, n).narrow(-1, n, n)};
    }
    at::AutoDispatchBelowADInplaceOrView guard;
    if (!ctx->saved_data["traced"].toBool()) return {mantra::expm_backward(grad, saved[0])};
    return {detail::expm_traced_backward(grad, saved[0], at::TensorList(saved).slice(1))};
  }
};

at::Tensor expm_autograd(const at::Tensor& A) {
  if (!at::GradMode::is_enabled() || !A.requires_grad()) {
    // Nothing to differentiate: the plain forward kernel, no trace kept.
    at::AutoDispatchBelowADInplaceOrView guard;
    return mantra::expm(A);
  }
  return ExpmFunction::apply(A);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, Autograd, m) {
  m.impl("expm", &mantra::expm_autograd);
  // The other operators have no derivative: using one in a graph raises a clear error.
  m.impl("expm_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("_expm_traced", torch::autograd::autogradNotImplementedFallback());
  m.impl("_expm_traced_backward", torch::autograd::autogradNotImplementedFallback());
}
