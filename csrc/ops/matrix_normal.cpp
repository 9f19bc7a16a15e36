// Schema, C++ entry points, Meta kernels and the CUDA registration (for now the ATen
// composition of matrix_normal_algorithm.h) of the matrix-normal operators:
//   matrix_normal_sample, matrix_normal_linear            public;
//   _matrix_normal_{sample,linear}_traced, _..._backward    private: the forwards that also return
//                                                          what the backward reuses, and the backwards.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "mantra/bayes/matrix_normal.h"
#include "ops/matrix_normal_algorithm.h"

namespace mantra {

at::Tensor matrix_normal_sample(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::matrix_normal_sample", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(M, A, B, E);
}

at::Tensor matrix_normal_linear(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                                const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("mantra::matrix_normal_linear", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const std::optional<at::Tensor>&)>();
  return op.call(X, M, A, B, E, bias);
}

namespace {
using T2 = std::tuple<at::Tensor, at::Tensor>;
using T3 = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using T4 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using T6 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Meta: validate the shapes, allocate the results.
at::Tensor sample_meta(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  detail::check_matrix_normal_sample_arguments(M, A, B, E, "mantra::matrix_normal_sample");
  return at::empty(M.sizes(), M.options());
}
T2 sample_traced_meta(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  detail::check_matrix_normal_sample_arguments(M, A, B, E, "mantra::_matrix_normal_sample_traced");
  return {at::empty(M.sizes(), M.options()), at::empty(M.sizes(), M.options())};
}
T3 sample_backward_meta(const at::Tensor& grad, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E,
                        const at::Tensor& /*T*/, bool grad_E) {
  return {at::empty(A.sizes(), A.options()), at::empty(B.sizes(), B.options()),
          grad_E ? at::empty(E.sizes(), E.options()) : at::empty({0}, E.options())};
}
at::Tensor linear_meta(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                       const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  detail::check_matrix_normal_linear_arguments(X, M, A, B, E, bias, "mantra::matrix_normal_linear");
  return at::empty({X.size(0), M.size(1)}, M.options());
}
T4 linear_traced_meta(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                      const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  detail::check_matrix_normal_linear_arguments(X, M, A, B, E, bias, "mantra::_matrix_normal_linear_traced");
  const int64_t N = X.size(0), n = M.size(0), m = M.size(1);
  return {at::empty({N, m}, M.options()), at::empty({N, n}, M.options()), at::empty({N}, M.options()),
          at::empty({N, m}, M.options())};
}
T6 linear_backward_meta(const at::Tensor& grad, const at::Tensor& X, const at::Tensor& M, const at::Tensor& A,
                        const at::Tensor& B, const at::Tensor& E, const at::Tensor& /*P*/, const at::Tensor& /*s*/,
                        const at::Tensor& /*F*/, bool grad_X, bool grad_E) {
  return {grad_X ? at::empty(X.sizes(), X.options()) : at::empty({0}, X.options()), at::empty(M.sizes(), M.options()),
          at::empty(A.sizes(), A.options()), at::empty(B.sizes(), B.options()),
          grad_E ? at::empty(E.sizes(), E.options()) : at::empty({0}, E.options()), at::empty({M.size(1)}, M.options())};
}

// CUDA: the ATen composition (shape checks only; the value checks would synchronize).
at::Tensor sample_cuda(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  detail::check_matrix_normal_sample_arguments(M, A, B, E, "mantra::matrix_normal_sample");
  return std::get<0>(detail::matrix_normal_sample_traced_generic(M, A, B, E));
}
T2 sample_traced_cuda(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  detail::check_matrix_normal_sample_arguments(M, A, B, E, "mantra::_matrix_normal_sample_traced");
  return detail::matrix_normal_sample_traced_generic(M, A, B, E);
}
at::Tensor linear_cuda(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                       const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  detail::check_matrix_normal_linear_arguments(X, M, A, B, E, bias, "mantra::matrix_normal_linear");
  return std::get<0>(detail::matrix_normal_linear_traced_generic(X, M, A, B, E, bias, detail::aten_elementwise()));
}
T4 linear_traced_cuda(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                      const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  detail::check_matrix_normal_linear_arguments(X, M, A, B, E, bias, "mantra::_matrix_normal_linear_traced");
  return detail::matrix_normal_linear_traced_generic(X, M, A, B, E, bias, detail::aten_elementwise());
}
T6 linear_backward_cuda(const at::Tensor& grad, const at::Tensor& X, const at::Tensor& M, const at::Tensor& A,
                        const at::Tensor& B, const at::Tensor& E, const at::Tensor& P, const at::Tensor& s,
                        const at::Tensor& F, bool grad_X, bool grad_E) {
  return detail::matrix_normal_linear_backward_generic(grad, X, M, A, B, E, P, s, F, grad_X, grad_E,
                                                       detail::aten_elementwise());
}
}  // namespace

}  // namespace mantra

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  m.def("matrix_normal_sample(Tensor M, Tensor A, Tensor B, Tensor E) -> Tensor");
  m.def("matrix_normal_linear(Tensor X, Tensor M, Tensor A, Tensor B, Tensor E, Tensor? bias=None) -> Tensor");
  // Private: W and T = tril(A)·E; the gradients (A, B, E) of <grad, W> from T (E's: empty (0,)
  // unless grad_E).
  m.def("_matrix_normal_sample_traced(Tensor M, Tensor A, Tensor B, Tensor E) -> (Tensor, Tensor)");
  m.def("_matrix_normal_sample_backward(Tensor grad, Tensor A, Tensor B, Tensor E, Tensor T, bool grad_E) "
        "-> (Tensor, Tensor, Tensor)");
  // Private: (O, P = X·tril(A), s = rownorm(P), F = E·tril(B)ᵀ); the gradients (X, M, A, B, E, bias)
  // (X's and E's: empty (0,) unless asked for).
  m.def("_matrix_normal_linear_traced(Tensor X, Tensor M, Tensor A, Tensor B, Tensor E, Tensor? bias=None) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_matrix_normal_linear_backward(Tensor grad, Tensor X, Tensor M, Tensor A, Tensor B, Tensor E, Tensor P, "
        "Tensor s, Tensor F, bool grad_X, bool grad_E) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mantra, Meta, m) {
  m.impl("matrix_normal_sample", &mantra::sample_meta);
  m.impl("_matrix_normal_sample_traced", &mantra::sample_traced_meta);
  m.impl("_matrix_normal_sample_backward", &mantra::sample_backward_meta);
  m.impl("matrix_normal_linear", &mantra::linear_meta);
  m.impl("_matrix_normal_linear_traced", &mantra::linear_traced_meta);
  m.impl("_matrix_normal_linear_backward", &mantra::linear_backward_meta);
}

TORCH_LIBRARY_IMPL(mantra, CUDA, m) {
  m.impl("matrix_normal_sample", &mantra::sample_cuda);
  m.impl("_matrix_normal_sample_traced", &mantra::sample_traced_cuda);
  m.impl("_matrix_normal_sample_backward", &mantra::detail::matrix_normal_sample_backward_generic);
  m.impl("matrix_normal_linear", &mantra::linear_cuda);
  m.impl("_matrix_normal_linear_traced", &mantra::linear_traced_cuda);
  m.impl("_matrix_normal_linear_backward", &mantra::linear_backward_cuda);
}
