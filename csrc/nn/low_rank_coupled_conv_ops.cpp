// The factored convolution of a coupled low-rank kernel (mantra::nn::low_rank_coupled_conv2d)
// as a dispatcher operator, CompositeImplicitAutograd like low_rank_coupled_linear
// (csrc/parametrize/low_rank_coupled_ops.cpp), the manifold as its spec() string.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "mantra/manifolds/manifold.h"
#include "mantra/nn/conv.h"

namespace mantra::nn {
namespace {

at::Tensor conv2d_op(const at::Tensor& input, const at::Tensor& P, c10::string_view manifold,
                     at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                     at::IntArrayRef dilation, int64_t groups, const std::optional<at::Tensor>& scale,
                     const std::optional<at::Tensor>& bias) {
  return low_rank_coupled_conv2d(input, *manifolds::manifold_from_spec(std::string(manifold), "manifold"), P,
                                 kernel_size, stride, padding, dilation, groups,
                                 scale.has_value() ? *scale : at::Tensor(), bias.has_value() ? *bias : at::Tensor());
}

}  // namespace
}  // namespace mantra::nn

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def(
      "low_rank_coupled_conv2d(Tensor input, Tensor P, str manifold, int[2] kernel_size, int[2] stride=1, "
      "int[2] padding=0, int[2] dilation=1, int groups=1, Tensor? scale=None, Tensor? bias=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(mantra, CompositeImplicitAutograd, m) {
  m.impl("low_rank_coupled_conv2d", &mantra::nn::conv2d_op);
}
