// Autograd for mantra::modrelu: the backward is mantra::modrelu_backward from the saved output
// (its derivatives depend on the output alone, modrelu_algorithm.h). Both passes redispatch
// below autograd, so the kernels of the tensors' device run.
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "mantra/ops.h"

namespace mantra {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class ModReLUFunction : public torch::autograd::Function<ModReLUFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& z, const at::Tensor& bias) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor result = mantra::modrelu(z, bias);
    ctx->save_for_backward({result});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "mantra::modrelu: double backward (create_graph=True) is not implemented");
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return {at::Tensor(), at::Tensor()};
    const variable_list saved = ctx->get_saved_variables();
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_z, grad_bias] = mantra::modrelu_backward(grad, saved[0]);
    return {grad_z, grad_bias};
  }
};

at::Tensor modrelu_autograd(const at::Tensor& z, const at::Tensor& bias) {
  return ModReLUFunction::apply(z, bias);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, Autograd, m) {
  m.impl("modrelu", &mantra::modrelu_autograd);
  m.impl("modrelu_backward", torch::autograd::autogradNotImplementedFallback());
}
