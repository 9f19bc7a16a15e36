// Schema, C++ entry points, argument checks and Meta kernels of mantra::modrelu and
// mantra::modrelu_backward (the math: modrelu_algorithm.h).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "mantra/ops.h"
#include "ops/modrelu_algorithm.h"

namespace mantra {

at::Tensor modrelu(const at::Tensor& z, const at::Tensor& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::modrelu", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op.call(z, bias);
}

std::tuple<at::Tensor, at::Tensor> modrelu_backward(const at::Tensor& grad, const at::Tensor& result) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::modrelu_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&)>();
  return op.call(grad, result);
}

namespace detail {
namespace {
void check_floating(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK_VALUE(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
  TORCH_CHECK_VALUE(t.dim() >= 1, op, ": argument '", arg, "' must have at least 1 dimension (..., H), got a 0-D tensor");
  const auto s = t.scalar_type();
  TORCH_CHECK_VALUE(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": argument '",
                    arg, "' must be float32 or float64 (float16/bfloat16 are computed in float32), got ", s);
}
void check_like(const at::Tensor& t, const char* arg, const at::Tensor& ref, const char* ref_arg, const char* op) {
  TORCH_CHECK_VALUE(t.scalar_type() == ref.scalar_type(), op, ": argument '", arg, "' must have the dtype of '",
                    ref_arg, "' (", ref.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": argument '", arg, "' must be on the device of '", ref_arg,
                    "' (", ref.device(), "), got ", t.device());
}
}  // namespace

void check_modrelu_arguments(const at::Tensor& z, const at::Tensor& bias, const char* op) {
  check_floating(z, op, "z");
  TORCH_CHECK_VALUE(bias.defined(), op, ": argument 'bias' is an undefined tensor");
  TORCH_CHECK_VALUE(bias.dim() == 1, op, ": argument 'bias' must have shape (H,), got ", bias.sizes());
  TORCH_CHECK_VALUE(z.size(-1) == bias.size(0), op, ": arguments 'z' and 'bias' disagree on the number of features: ",
                    "'z' has shape ", z.sizes(), " (", z.size(-1), " in its last dimension), 'bias' has ", bias.size(0),
                    " entries");
  check_like(bias, "bias", z, "z", op);
}

void check_modrelu_backward_arguments(const at::Tensor& grad, const at::Tensor& result, const char* op) {
  check_floating(result, op, "result");
  TORCH_CHECK_VALUE(grad.defined(), op, ": argument 'grad' is an undefined tensor");
  TORCH_CHECK_VALUE(grad.sizes() == result.sizes(), op, ": argument 'grad' must have the shape of 'result' ",
                    result.sizes(), ", got ", grad.sizes());
  check_like(grad, "grad", result, "result", op);
}

}  // namespace detail

namespace {
at::Tensor modrelu_meta(const at::Tensor& z, const at::Tensor& bias) {
  detail::check_modrelu_arguments(z, bias, "mantra::modrelu");
  return at::empty(z.sizes(), z.options());
}
std::tuple<at::Tensor, at::Tensor> modrelu_backward_meta(const at::Tensor& grad, const at::Tensor& result) {
  detail::check_modrelu_backward_arguments(grad, result, "mantra::modrelu_backward");
  return {at::empty(result.sizes(), result.options()), at::empty({result.size(-1)}, result.options())};
}
}  // namespace

}  // namespace mantra

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("modrelu(Tensor z, Tensor bias) -> Tensor");
  m.def("modrelu_backward(Tensor grad, Tensor result) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mantra, Meta, m) {
  m.impl("modrelu", &mantra::modrelu_meta);
  m.impl("modrelu_backward", &mantra::modrelu_backward_meta);
}
