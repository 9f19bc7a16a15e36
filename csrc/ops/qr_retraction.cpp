// Schema, C++ entry points and Meta kernels of the QR retraction operators:
//   qr_retraction, qr_retraction_backward  public;
//   _qr_retraction_factors                 private: (Q, R), the forward under autograd, which
//                                          keeps R for the backward (autograd/).
// The algorithm and its branch threshold: qr_retraction_algorithm.h.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "ops/qr_retraction_algorithm.h"

namespace mantra {

at::Tensor qr_retraction(const at::Tensor& X) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::qr_retraction", "")
                       .typed<at::Tensor(const at::Tensor&)>();
  return op.call(X);
}

at::Tensor qr_retraction_backward(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::qr_retraction_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(grad, Q, R);
}

namespace detail {
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors(const at::Tensor& X) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_qr_retraction_factors", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&)>();
  return op.call(X);
}
}  // namespace detail

namespace {
// Shape functions for the Meta key (fake tensors, torch.compile): validate, allocate.
std::vector<int64_t> r_shape(at::IntArrayRef x) {
  std::vector<int64_t> s(x.begin(), x.end());
  s[s.size() - 2] = s.back();
  return s;
}
at::Tensor qr_retraction_meta(const at::Tensor& X) {
  detail::check_qr_retraction_argument(X, "mantra::qr_retraction", "X");
  return at::empty(X.sizes(), X.options());
}
std::tuple<at::Tensor, at::Tensor> qr_retraction_factors_meta(const at::Tensor& X) {
  detail::check_qr_retraction_argument(X, "mantra::qr_retraction", "X");
  return {at::empty(X.sizes(), X.options()), at::empty(r_shape(X.sizes()), X.options())};
}
at::Tensor qr_retraction_backward_meta(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  detail::check_qr_retraction_backward_arguments(grad, Q, R, "mantra::qr_retraction_backward");
  return at::empty(Q.sizes(), Q.options());
}
}  // namespace

}  // namespace mantra

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("qr_retraction(Tensor X) -> Tensor");
  m.def("qr_retraction_backward(Tensor grad, Tensor Q, Tensor R) -> Tensor");
  m.def("_qr_retraction_factors(Tensor X) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mantra, Meta, m) {
  m.impl("qr_retraction", &mantra::qr_retraction_meta);
  m.impl("qr_retraction_backward", &mantra::qr_retraction_backward_meta);
  m.impl("_qr_retraction_factors", &mantra::qr_retraction_factors_meta);
}
