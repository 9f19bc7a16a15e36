// Autograd for mantra::qr_retraction. The forward is mantra::_qr_retraction_factors below
// autograd (Q and R from one factorization); the backward is mantra::qr_retraction_backward
// from the saved Q and R (O(nk²) + one triangular solve, no refactorization).
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "ops/qr_retraction_algorithm.h"

namespace mantra {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class QrRetractionFunction : public torch::autograd::Function<QrRetractionFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& X) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [Q, R] = detail::qr_retraction_factors(X);
    ctx->save_for_backward({Q, R});
    return Q;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "mantra::qr_retraction: double backward (create_graph=True) is not implemented");
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {at::Tensor()};
    const variable_list saved = ctx->get_saved_variables();
    at::AutoDispatchBelowADInplaceOrView guard;
    return {mantra::qr_retraction_backward(grad, saved[0], saved[1])};
  }
};

at::Tensor qr_retraction_autograd(const at::Tensor& X) {
  if (!at::GradMode::is_enabled() || !X.requires_grad()) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return mantra::qr_retraction(X);
  }
  return QrRetractionFunction::apply(X);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, Autograd, m) {
  m.impl("qr_retraction", &mantra::qr_retraction_autograd);
  m.impl("qr_retraction_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("_qr_retraction_factors", torch::autograd::autogradNotImplementedFallback());
}
