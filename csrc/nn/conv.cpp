#include "mantra/nn/conv.h"

#include <torch/torch.h>

#include <cmath>

#include "mantra/manifolds/low_rank_coupled.h"
#include "mantra/parametrize/functional.h"
#include "mantra/parametrize/parametrize.h"
#include "weight_constraint.h"

namespace mantra::nn {

namespace {
constexpr const char* kLayer = "mantra::nn::Conv2d";

void check_pair(at::IntArrayRef v, const char* fn, const char* arg, int64_t least) {
  TORCH_CHECK_VALUE(v.size() == 2 && v[0] >= least && v[1] >= least, fn, ": argument '", arg, "' must be two ints >= ",
                    least, ", got ", v);
}
}  // namespace

Conv2dImpl::Conv2dImpl(const Conv2dOptions& options_) : options(options_) { reset(); }

void Conv2dImpl::reset() {
  const int64_t in = options.in_channels(), out = options.out_channels(), groups = options.groups();
  TORCH_CHECK_VALUE(in > 0 && out > 0, kLayer, ": arguments 'in_channels' and 'out_channels' must be positive, got ", in,
                    " and ", out);
  check_pair(*options.kernel_size(), kLayer, "kernel_size", 1);
  check_pair(*options.stride(), kLayer, "stride", 1);
  check_pair(*options.padding(), kLayer, "padding", 0);
  check_pair(*options.dilation(), kLayer, "dilation", 1);
  TORCH_CHECK_VALUE(groups >= 1 && in % groups == 0 && out % groups == 0, kLayer,
                    ": argument 'groups' must be >= 1 and divide in_channels (", in, ") and out_channels (", out,
                    "), got ", groups);
  detail::check_scale(kLayer, options.scale());
  const auto k = *options.kernel_size();
  const std::vector<int64_t> kernel_shape{out, in / groups, k[0], k[1]};
  weight = register_parameter("weight", torch::empty(kernel_shape));
  if (options.bias()) {
    bias = register_parameter("bias", torch::empty(out));
  } else {
    bias = register_parameter("bias", {}, /*requires_grad=*/false);
  }
  reset_parameters();

  if (options.constraint() != "none") {
    // The constraint acts on the matrix view: attach it to that matrix (torch's initial kernel,
    // kept when it satisfies the constraint), then let the attached tensor hold the kernel shape
    // again, as parametrize's flatten option does.
    torch::Tensor matrix = weight.detach().reshape({out, -1}).clone();
    parameters_.erase("weight");
    weight = register_parameter("weight", matrix);
  }
  constraint = detail::attach_weight_constraint(*this, "weight", kLayer, options.constraint(), options.triv(),
                                                options.rank(), options.lambda());
  if (!constraint.is_empty()) {
    constraint->target()->tensor_shape = kernel_shape;
    parametrize::refresh_target(*constraint);
  }
  scale = detail::register_scale(*this, options.scale(), out);
}

void Conv2dImpl::reset_parameters() {
  // torch::nn::Conv2d's initialization (kaiming-uniform kernel, uniform bias by the fan-in).
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const auto k = *options.kernel_size();
    const double fan_in = static_cast<double>(options.in_channels() / options.groups() * k[0] * k[1]);
    const double bound = 1.0 / std::sqrt(fan_in);
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

torch::Tensor Conv2dImpl::effective_weight() {
  const auto k = *options.kernel_size();
  const int64_t out = options.out_channels();
  // g scales rows of the matrix view (output channels).
  torch::Tensor W = constraint.is_empty() ? weight.reshape({out, -1}) : constraint->forward();
  if (scale.defined()) W = W * scale;
  return W.reshape({out, options.in_channels() / options.groups(), k[0], k[1]});
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& input) {
  if (auto coupled = detail::coupled_of(constraint)) {
    // The factors, never the kernel: conv by Vᵀ, then a 1×1 conv by diag(g) H.
    return low_rank_coupled_conv2d(input, coupled->coupled(), coupled->point(), *options.kernel_size(),
                                   *options.stride(), *options.padding(), *options.dilation(), options.groups(),
                                   scale, bias);
  }
  return at::conv2d(input, effective_weight(), bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt,
                    *options.stride(), *options.padding(), *options.dilation(), options.groups());
}

void Conv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::nn::Conv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride();
  if (*options.padding() != *torch::ExpandingArray<2>(0)) stream << ", padding=" << options.padding();
  if (*options.dilation() != *torch::ExpandingArray<2>(1)) stream << ", dilation=" << options.dilation();
  if (options.groups() != 1) stream << ", groups=" << options.groups();
  stream << ", bias=" << (options.bias() ? "true" : "false") << ", constraint=" << options.constraint();
  if (options.constraint() == "low_rank" || options.constraint() == "fixed_rank" ||
      options.constraint() == "low_rank_oblique" || options.constraint() == "low_rank_sphere") {
    stream << ", rank=" << options.rank();
  }
  if (options.scale() != "none") stream << ", scale=" << options.scale();
  stream << ")";
}

torch::Tensor low_rank_coupled_conv2d(const torch::Tensor& input, const manifolds::Manifold& manifold,
                                      const torch::Tensor& P, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                      at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                      const torch::Tensor& scale, const torch::Tensor& bias) {
  constexpr const char* fn = "low_rank_coupled_conv2d";
  const auto& M = parametrize::functional::as_low_rank_coupled(manifold, fn);
  check_pair(kernel_size, fn, "kernel_size", 1);
  check_pair(stride, fn, "stride", 1);
  check_pair(padding, fn, "padding", 0);
  check_pair(dilation, fn, "dilation", 1);
  TORCH_CHECK_VALUE(groups >= 1 && M.m() % groups == 0, fn, ": argument 'groups' must be >= 1 and divide the ", M.m(),
                    " output channels, got ", groups);
  TORCH_CHECK_VALUE(P.dim() == 2, fn, ": argument 'P' must be one point (m+n, rank), got shape ", P.sizes());
  TORCH_CHECK_VALUE((input.dim() == 3 || input.dim() == 4) && input.size(-3) % groups == 0 &&
                        input.size(-3) / groups * kernel_size[0] * kernel_size[1] == M.n(),
                    fn, ": argument 'input' must be (N, C, H, W) or (C, H, W) with C/groups·kh·kw = ", M.n(),
                    " (groups ", groups, ", kernel_size ", kernel_size, "), got shape ", input.sizes());
  auto [H, V] = M.split(P);
  const int64_t r = M.rank();
  // Vᵀ as r filters over one group's input channels, the same for every group.
  at::Tensor Vt = V.t().reshape({r, input.size(-3) / groups, kernel_size[0], kernel_size[1]});
  if (groups > 1) Vt = Vt.repeat({groups, 1, 1, 1});
  const at::Tensor coefficients = at::conv2d(input, Vt, c10::nullopt, stride, padding, dilation, groups);
  const at::Tensor Hg = scale.defined() ? H * scale : H;  // diag(g) H
  return at::conv2d(coefficients, Hg.reshape({M.m(), r, 1, 1}),
                    bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt, at::IntArrayRef{1, 1},
                    at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, groups);
}

}  // namespace mantra::nn
