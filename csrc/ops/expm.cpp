// Schema, C++ entry points and Meta kernels of the matrix exponential operators:
//   expm, expm_backward                 public;
//   _expm_traced, _expm_traced_backward private: the forward that also returns its trace and
//                                       the adjoint sweep over that trace, which expm's
//                                       autograd kernel calls below autograd (autograd/).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "mantra/ops.h"
#include "ops/expm_algorithm.h"

namespace mantra {

at::Tensor expm(const at::Tensor& A) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::expm", "")
                       .typed<at::Tensor(const at::Tensor&)>();
  return op.call(A);
}

at::Tensor expm_backward(const at::Tensor& grad, const at::Tensor& A) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::expm_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op.call(grad, A);
}

namespace detail {

std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced(const at::Tensor& A) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_expm_traced", "")
                       .typed<std::tuple<at::Tensor, std::vector<at::Tensor>>(const at::Tensor&)>();
  return op.call(A);
}

at::Tensor expm_traced_backward(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::_expm_traced_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, at::TensorList)>();
  return op.call(grad, A, trace);
}

}  // namespace detail

namespace {
// Shape functions for the Meta key (fake tensors, torch.compile): validate, allocate.
at::Tensor expm_meta(const at::Tensor& A) {
  detail::check_expm_argument(A, "mantra::expm", "A");
  return at::empty(A.sizes(), A.options());  // contiguous, as the kernels' results
}
at::Tensor expm_backward_meta(const at::Tensor& grad, const at::Tensor& A) {
  detail::check_expm_backward_arguments(grad, A, "mantra::expm_backward");
  return at::empty(A.sizes(), A.options());  // contiguous, as the kernels' results
}
// The number and sizes of the trace depend on the values of A (its norm chooses the degree and
// the squarings), so _expm_traced has no shape function; expm's autograd kernel uses
// expm/expm_backward on fake tensors instead (their shapes are static).
std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_meta(const at::Tensor& A) {
  detail::check_expm_argument(A, "mantra::expm", "A");
  TORCH_CHECK_NOT_IMPLEMENTED(false, "mantra::_expm_traced: the length and shapes of its trace depend on the "
                              "values of 'A', so it cannot run on meta/fake tensors; use mantra::expm and "
                              "mantra::expm_backward there");
  return {};
}
at::Tensor expm_traced_backward_meta(const at::Tensor& grad, const at::Tensor& A, at::TensorList /*trace*/) {
  detail::check_expm_backward_arguments(grad, A, "mantra::_expm_traced_backward");
  return at::empty(A.sizes(), A.options());  // contiguous, as the kernels' results
}
}  // namespace

}  // namespace mantra

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("expm(Tensor A) -> Tensor");
  m.def("expm_backward(Tensor grad, Tensor A) -> Tensor");
  // Private: exp(A) and the trace [plan (int64, CPU), intermediates...] of its evaluation.
  m.def("_expm_traced(Tensor A) -> (Tensor, Tensor[])");
  // Private: the gradient of <grad, exp(A)> from A and the trace _expm_traced returned for it.
  m.def("_expm_traced_backward(Tensor grad, Tensor A, Tensor[] trace) -> Tensor");
}

TORCH_LIBRARY_IMPL(mantra, Meta, m) {
  m.impl("expm", &mantra::expm_meta);
  m.impl("expm_backward", &mantra::expm_backward_meta);
  m.impl("_expm_traced", &mantra::expm_traced_meta);
  m.impl("_expm_traced_backward", &mantra::expm_traced_backward_meta);
}
