// mantra::nn::Conv2d: a drop-in for torch::nn::Conv2d (same options for zero padding, same
// initialization and forward) whose kernel carries a constraint of mantra::nn::Linear's set,
// optionally scaled. The constrained matrix is the kernel's matrix view W of shape
// out_channels × (in_channels/groups · kh · kw), rows = output channels as in Linear; the
// scale g multiplies its rows. With a coupled low-rank constraint (low_rank_oblique,
// low_rank_sphere; weight-normalized low rank W = diag(g)·X, X ∈ low_rank_oblique(r), is
// constraint "low_rank_oblique" with scale "per_row") the kernel is never formed: the forward
// is a conv by Vᵀ (r output channels per group) followed by a 1×1 conv by diag(g)·H
// (low_rank_coupled_conv2d), r·(in/groups·kh·kw + out/groups)·groups multiply-adds per output
// pixel instead of out·in/groups·kh·kw.
#pragma once

#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <mantra/manifolds/manifold.h>
#include <mantra/parametrize/constraint.h>

#include <string>

namespace mantra::nn {

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(torch::ExpandingArray<2>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  TORCH_ARG(torch::ExpandingArray<2>, padding) = 0;  // zeros on both sides
  TORCH_ARG(torch::ExpandingArray<2>, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = true;
  // As LinearOptions: "none" or a constraint of the kernel's matrix view; triv, rank, lambda
  // for the constraints that use them; scale "none", "isotropic" or "per_row" (one g per
  // output channel).
  TORCH_ARG(std::string, constraint) = "orthogonal";
  TORCH_ARG(std::string, triv) = "expm";
  TORCH_ARG(int64_t, rank) = 1;
  TORCH_ARG(double, lambda) = 0.1;
  TORCH_ARG(std::string, scale) = "none";
};

class Conv2dImpl : public torch::nn::Cloneable<Conv2dImpl> {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : Conv2dImpl(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  explicit Conv2dImpl(const Conv2dOptions& options);

  void reset() override;
  void reset_parameters();
  // input (N, in_channels, H, W) or (in_channels, H, W) -> (N, out_channels, H', W').
  torch::Tensor forward(const torch::Tensor& input);
  // The kernel the forward applies, g·W viewed as (out, in/groups, kh, kw).
  torch::Tensor effective_weight();
  void pretty_print(std::ostream& stream) const override;

  Conv2dOptions options;
  // The kernel (out, in/groups, kh, kw); when constrained, the constraint's value (of the matrix
  // view) reshaped, kept current by refresh() as for any attached tensor.
  torch::Tensor weight;
  torch::Tensor bias;
  torch::Tensor scale;  // g, when options.scale != "none"
  parametrize::Constraint constraint{nullptr};
};

TORCH_MODULE(Conv2d);

// The factored convolution of a coupled low-rank kernel X = H Vᵀ (P = [H; V] a point of
// `manifold`, m = out channels, n = in/groups·kh·kw): conv2d(input, Vᵀ as r filters of shape
// (in/groups, kh, kw) per group), then conv2d by diag(g)·H as a 1×1 kernel, plus bias. Equals
// conv2d(input, (diag(g) H Vᵀ).view(m, in/groups, kh, kw), bias, stride, padding, dilation,
// groups) without forming the kernel. scale (m, 1) or (1) and bias (m) optional (undefined).
// The op torch.ops.mantra.low_rank_coupled_conv2d.
torch::Tensor low_rank_coupled_conv2d(const torch::Tensor& input, const manifolds::Manifold& manifold,
                                      const torch::Tensor& P, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                      const torch::Tensor& scale, const torch::Tensor& bias);

}  // namespace mantra::nn
