// Autograd for mantra::expm. On concrete tensors the forward keeps the intermediates of the
// scaling-and-squaring evaluation, so the backward is only the adjoint sweep (about twice the
// forward's products, no recomputation). On fake/meta/functional tensors (torch.compile,
// opcheck) it goes through the expm and expm_backward operators, whose shapes are static.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "mantra/ops.h"
#include "ops/expm_algorithm.h"

namespace mantra {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool is_concrete(const at::Tensor& t) {
  constexpr auto symbolic = c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize,
                                                 c10::DispatchKey::PythonTLSSnapshot});
  return (t.is_cpu() || t.is_cuda()) && !t.key_set().has_any(symbolic);
}

class ExpmFunction : public torch::autograd::Function<ExpmFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& A) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["shape"] = A.sizes().vec();
    ctx->saved_data["dtype"] = static_cast<int64_t>(A.scalar_type());
    if (!is_concrete(A) || A.numel() == 0) {
      ctx->saved_data["traced"] = false;
      ctx->save_for_backward({A});
      return mantra::expm(A);
    }
    detail::check_expm_argument(A, "mantra::expm", "A");
    at::Tensor A3 = detail::to_batch(A);
    const detail::ExpmPlan plan = detail::expm_plan(A3, "mantra::expm", "A");
    std::vector<at::Tensor> trace;
    at::Tensor E = detail::expm_run(A3, plan, &trace);
    ctx->saved_data["traced"] = true;
    ctx->saved_data["plan"] = detail::pack_plan(plan);
    ctx->save_for_backward(trace);
    return detail::from_batch(E, A.sizes(), A.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "mantra::expm: double backward (create_graph=True) is not implemented");
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {at::Tensor()};
    auto saved = ctx->get_saved_variables();
    if (!ctx->saved_data["traced"].toBool()) return {mantra::expm_backward(grad, saved[0])};
    const auto shape = ctx->saved_data["shape"].toIntVector();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const detail::ExpmPlan plan = detail::unpack_plan(ctx->saved_data["plan"].toIntVector());
    return {detail::from_batch(detail::expm_reverse(detail::to_batch(grad), plan, saved), shape, dtype)};
  }
};

at::Tensor expm_autograd(const at::Tensor& A) {
  return ExpmFunction::apply(A);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, Autograd, m) {
  m.impl("expm", &mantra::expm_autograd);
  // expm_backward has no derivative: using one in a graph raises a clear error.
  m.impl("expm_backward", torch::autograd::autogradNotImplementedFallback());
}
