// CPU kernels of mantra::modrelu / modrelu_backward: one parallel pass of the scalar functions of
// modrelu_algorithm.h.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "ops/cpu/modrelu_loops.h"
#include "ops/kernel_calls.h"
#include "ops/modrelu_algorithm.h"

namespace mantra {
namespace {

at::Tensor modrelu_cpu(const at::Tensor& z, const at::Tensor& bias) {
  MANTRA_COUNT_KERNEL_CALL("modrelu.CPU");
  detail::check_modrelu_arguments(z, bias, "mantra::modrelu");
  const at::Tensor bc = bias.contiguous();
  at::Tensor out = at::empty(z.sizes(), z.options());
  out.copy_(z);
  const int64_t H = bias.size(0), rows = H > 0 ? z.numel() / H : 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, z.scalar_type(), "mantra::modrelu", [&] {
    detail::modrelu_rows_<scalar_t>(out.mutable_data_ptr<scalar_t>(), bc.const_data_ptr<scalar_t>(), rows, H);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> modrelu_backward_cpu(const at::Tensor& grad, const at::Tensor& result) {
  MANTRA_COUNT_KERNEL_CALL("modrelu_backward.CPU");
  detail::check_modrelu_backward_arguments(grad, result, "mantra::modrelu_backward");
  const at::Tensor g = grad.contiguous(), h = result.contiguous();
  const int64_t H = result.size(-1), rows = H > 0 ? result.numel() / H : 0;
  at::Tensor grad_z = at::empty(result.sizes(), result.options());
  at::Tensor grad_b = at::empty({H}, result.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, result.scalar_type(), "mantra::modrelu_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* hp = h.const_data_ptr<scalar_t>();
    scalar_t* gz = grad_z.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows * H, detail::row_grain(1), [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k)
        gz[k] = static_cast<scalar_t>(static_cast<acc_t>(gp[k]) * detail::modrelu_dz(static_cast<acc_t>(hp[k])));
    });
    detail::modrelu_bias_grad_rows<scalar_t>(gp, hp, grad_b.mutable_data_ptr<scalar_t>(), rows, H);
  });
  return {grad_z, grad_b};
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("modrelu", &mantra::modrelu_cpu);
  m.impl("modrelu_backward", &mantra::modrelu_backward_cpu);
}
