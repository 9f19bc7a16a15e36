// Schema, C++ entry points, argument checks, Meta kernels and the ATen reference of the
// orthogonal-RNN recurrence (orthogonal_rnn_algorithm.h; modReLU is mantra::modrelu).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "mantra/ops.h"
#include "ops/orthogonal_rnn_algorithm.h"

namespace mantra {

at::Tensor orthogonal_rnn(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                          const at::Tensor& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::orthogonal_rnn", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(input, h0, recurrent, bias);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::orthogonal_rnn_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&)>();
  return op.call(grad_hidden, hidden, h0, recurrent, bias);
}

namespace detail {
namespace {

const char* kForward = "mantra::orthogonal_rnn";
const char* kBackward = "mantra::orthogonal_rnn_backward";

// The checks both ops share; `first` is 'input' (T, N, H) of the forward or 'hidden' of the
// backward, and fixes N and H.
void check_recurrence(const at::Tensor& first, const char* first_name, const at::Tensor& h0,
                      const at::Tensor& recurrent, const at::Tensor& bias, const char* op) {
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{first, first_name}, {h0, "h0"},
                                {recurrent, "recurrent"}, {bias, "bias"}}) {
    TORCH_CHECK_VALUE(t.defined(), op, ": argument '", name, "' is an undefined tensor");
  }
  TORCH_CHECK_VALUE(first.dim() == 3, op, ": argument '", first_name, "' must have shape (T, N, H), got ",
                    first.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(first.scalar_type()), op, ": argument '", first_name,
                    "' must be floating point, got ", first.scalar_type());
  const int64_t N = first.size(1), H = first.size(2);
  // A square recurrent of another size: 'first' and 'recurrent' disagree on H (name both).
  TORCH_CHECK_VALUE(!(recurrent.dim() == 2 && recurrent.size(0) == recurrent.size(1) && recurrent.size(0) != H), op,
                    ": arguments '", first_name, "' and 'recurrent' disagree on the hidden size H: '", first_name,
                    "' has shape ", first.sizes(), " (H = ", H, "), 'recurrent' has shape ", recurrent.sizes());
  TORCH_CHECK_VALUE(h0.dim() == 2 && h0.size(0) == N && h0.size(1) == H, op,
                    ": argument 'h0' must have shape (N, H) = (", N, ", ", H, "), got ", h0.sizes());
  TORCH_CHECK_VALUE(recurrent.dim() == 2 && recurrent.size(0) == H && recurrent.size(1) == H, op,
                    ": argument 'recurrent' must have shape (H, H) = (", H, ", ", H, "), got ", recurrent.sizes());
  TORCH_CHECK_VALUE(bias.dim() == 1 && bias.size(0) == H, op, ": argument 'bias' must have shape (H,) = (", H,
                    ",), got ", bias.sizes());
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{h0, "h0"}, {recurrent, "recurrent"},
                                {bias, "bias"}}) {
    TORCH_CHECK_VALUE(t.scalar_type() == first.scalar_type(), op, ": argument '", name, "' must have the dtype of '",
                      first_name, "' (", first.scalar_type(), "), got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.device() == first.device(), op, ": argument '", name, "' must be on the device of '",
                      first_name, "' (", first.device(), "), got ", t.device());
  }
}

}  // namespace

void check_orthogonal_rnn_arguments(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                    const at::Tensor& bias) {
  check_recurrence(input, "input", h0, recurrent, bias, kForward);
}

void check_orthogonal_rnn_backward_arguments(const at::Tensor& grad_hidden, const at::Tensor& hidden,
                                             const at::Tensor& h0, const at::Tensor& recurrent,
                                             const at::Tensor& bias) {
  check_recurrence(hidden, "hidden", h0, recurrent, bias, kBackward);
  TORCH_CHECK_VALUE(grad_hidden.defined(), kBackward, ": argument 'grad_hidden' is an undefined tensor");
  TORCH_CHECK_VALUE(grad_hidden.sizes() == hidden.sizes(), kBackward,
                    ": argument 'grad_hidden' must have the shape of 'hidden' ", hidden.sizes(), ", got ",
                    grad_hidden.sizes());
  TORCH_CHECK_VALUE(grad_hidden.scalar_type() == hidden.scalar_type(), kBackward,
                    ": argument 'grad_hidden' must have the dtype of 'hidden' (", hidden.scalar_type(), "), got ",
                    grad_hidden.scalar_type());
  TORCH_CHECK_VALUE(grad_hidden.device() == hidden.device(), kBackward,
                    ": argument 'grad_hidden' must be on the device of 'hidden' (", hidden.device(), "), got ",
                    grad_hidden.device());
}

at::ScalarType rnn_compute_dtype(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

at::Tensor orthogonal_rnn_generic(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                                  const at::Tensor& bias) {
  check_orthogonal_rnn_arguments(input, h0, recurrent, bias);
  const auto dtype = rnn_compute_dtype(input.scalar_type());
  const at::Tensor u = input.to(dtype), Bt = recurrent.to(dtype).t(), b = bias.to(dtype);
  at::Tensor hidden = at::empty(input.sizes(), input.options().dtype(dtype));
  at::Tensor h = h0.to(dtype);
  for (int64_t t = 0; t < input.size(0); ++t) {
    h = mantra::modrelu(at::addmm(u[t], h, Bt), b);
    hidden[t].copy_(h);
  }
  return hidden.to(input.scalar_type());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward_generic(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias) {
  check_orthogonal_rnn_backward_arguments(grad_hidden, hidden, h0, recurrent, bias);
  const auto dtype = rnn_compute_dtype(hidden.scalar_type());
  const at::Tensor hs = hidden.to(dtype), B = recurrent.to(dtype), g_out = grad_hidden.to(dtype);
  const int64_t T = hidden.size(0), H = B.size(0);
  at::Tensor grad_pre = at::empty_like(hs);
  at::Tensor grad_b = at::zeros({H}, hs.options());
  at::Tensor carry = at::zeros_like(h0, h0.options().dtype(dtype));
  for (int64_t t = T - 1; t >= 0; --t) {
    auto [gz, gb] = mantra::modrelu_backward(g_out[t] + carry, hs[t]);
    grad_pre[t].copy_(gz);
    grad_b.add_(gb);
    carry = at::mm(grad_pre[t], B);
  }
  // dL/dB = Σ_t grad_pre_tᵀ·h_{t-1}
  at::Tensor grad_B = at::zeros_like(B);
  if (T > 0) {
    grad_B = at::mm(grad_pre[0].t(), h0.to(dtype));
    grad_B.addmm_(grad_pre.narrow(0, 1, T - 1).reshape({-1, H}).t(), hs.narrow(0, 0, T - 1).reshape({-1, H}));
  }
  const auto out = hidden.scalar_type();
  return {grad_pre.to(out), carry.to(out), grad_B.to(out), grad_b.to(out)};
}

}  // namespace detail

namespace {
at::Tensor orthogonal_rnn_meta(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& recurrent,
                               const at::Tensor& bias) {
  detail::check_orthogonal_rnn_arguments(input, h0, recurrent, bias);
  return at::empty_like(input, at::MemoryFormat::Contiguous);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> orthogonal_rnn_backward_meta(
    const at::Tensor& grad_hidden, const at::Tensor& hidden, const at::Tensor& h0, const at::Tensor& recurrent,
    const at::Tensor& bias) {
  detail::check_orthogonal_rnn_backward_arguments(grad_hidden, hidden, h0, recurrent, bias);
  return {at::empty_like(hidden, at::MemoryFormat::Contiguous), at::empty_like(h0, at::MemoryFormat::Contiguous),
          at::empty_like(recurrent, at::MemoryFormat::Contiguous), at::empty_like(bias, at::MemoryFormat::Contiguous)};
}
}  // namespace

}  // namespace mantra

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("orthogonal_rnn(Tensor input, Tensor h0, Tensor recurrent, Tensor bias) -> Tensor");
  m.def("orthogonal_rnn_backward(Tensor grad_hidden, Tensor hidden, Tensor h0, Tensor recurrent, Tensor bias) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mantra, Meta, m) {
  m.impl("orthogonal_rnn", &mantra::orthogonal_rnn_meta);
  m.impl("orthogonal_rnn_backward", &mantra::orthogonal_rnn_backward_meta);
}
