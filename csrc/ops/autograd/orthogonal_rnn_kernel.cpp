// Autograd for mantra::orthogonal_rnn: the backward is the orthogonal_rnn_backward operator
// (BPTT from the saved hidden states; see orthogonal_rnn_algorithm.h).
#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "mantra/ops.h"

namespace mantra {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class OrthogonalRNNFunction : public torch::autograd::Function<OrthogonalRNNFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& h0,
                            const at::Tensor& recurrent, const at::Tensor& bias) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor hidden = mantra::orthogonal_rnn(input, h0, recurrent, bias);
    ctx->save_for_backward({hidden, h0, recurrent, bias});
    return hidden;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "mantra::orthogonal_rnn: double backward (create_graph=True) is not implemented");
    auto saved = ctx->get_saved_variables();
    at::Tensor grad = grads[0];
    if (!grad.defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    auto [gi, gh0, gB, gb] = mantra::orthogonal_rnn_backward(grad, saved[0], saved[1], saved[2], saved[3]);
    return {gi, gh0, gB, gb};
  }
};

at::Tensor orthogonal_rnn_autograd(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                   const at::Tensor& bias) {
  return OrthogonalRNNFunction::apply(input, h0, recurrent, bias);
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, Autograd, m) {
  m.impl("orthogonal_rnn", &mantra::orthogonal_rnn_autograd);
  m.impl("orthogonal_rnn_backward", torch::autograd::autogradNotImplementedFallback());
}
