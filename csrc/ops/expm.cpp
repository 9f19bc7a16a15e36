// Schema and C++ entry points of the matrix exponential operators.
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

namespace {
// Shape functions for the Meta key (fake tensors, torch.compile): validate, allocate.
at::Tensor expm_meta(const at::Tensor& A) {
  detail::check_expm_argument(A, "mantra::expm", "A");
  return at::empty_like(A);
}
at::Tensor expm_backward_meta(const at::Tensor& grad, const at::Tensor& A) {
  detail::check_expm_argument(A, "mantra::expm_backward", "A");
  TORCH_CHECK_VALUE(grad.sizes() == A.sizes(), "mantra::expm_backward: argument 'grad' must have the shape of 'A' ",
              A.sizes(), ", got ", grad.sizes());
  return at::empty_like(A);
}
}  // namespace

}  // namespace mantra

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("expm(Tensor A) -> Tensor");
  m.def("expm_backward(Tensor grad, Tensor A) -> Tensor");
}

TORCH_LIBRARY_IMPL(mantra, Meta, m) {
  m.impl("expm", &mantra::expm_meta);
  m.impl("expm_backward", &mantra::expm_backward_meta);
}
