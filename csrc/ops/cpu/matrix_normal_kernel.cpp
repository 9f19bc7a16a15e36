// CPU kernels of the matrix-normal operators: the blocked triangular products of
// matrix_normal_algorithm.h, with the elementwise work of the local reparameterization (row
// norm, sqrt, scale, add) fused into one parallel pass over the rows; plus the value checks.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>

#include "ops/kernel_calls.h"
#include "ops/matrix_normal_algorithm.h"

namespace mantra {
namespace {

int64_t grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }

// out_i += ‖P_i‖·F_i, one pass per row (P, F contiguous; out contiguous).
at::Tensor cpu_scale_add(at::Tensor& out, const at::Tensor& P0, const at::Tensor& F0) {
  const at::Tensor P = P0.contiguous(), F = F0.contiguous();
  const int64_t N = P.size(0), n = P.size(1), m = F.size(1);
  at::Tensor s = at::empty({N}, P.options());
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "mantra::matrix_normal_linear", [&] {
    const scalar_t* p = P.const_data_ptr<scalar_t>();
    const scalar_t* f = F.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    scalar_t* sp = s.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N, grain(n + m), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const scalar_t* pi = p + i * n;
        scalar_t acc = 0;
        for (int64_t k = 0; k < n; ++k) acc += pi[k] * pi[k];
        const scalar_t si = std::sqrt(acc);
        sp[i] = si;
        const scalar_t* fi = f + i * m;
        scalar_t* oi = o + i * m;
        for (int64_t j = 0; j < m; ++j) oi[j] += si * fi[j];
      }
    });
  });
  return s;
}

std::tuple<at::Tensor, at::Tensor> cpu_scale_backward(const at::Tensor& G, const at::Tensor& F, const at::Tensor& P,
                                                      const at::Tensor& s) {
  const int64_t N = P.size(0), n = P.size(1), m = F.size(1);
  at::Tensor dF = at::empty({N, m}, F.options()), dP = at::empty({N, n}, P.options());
  AT_DISPATCH_FLOATING_TYPES(F.scalar_type(), "mantra::matrix_normal_linear_backward", [&] {
    const scalar_t* g = G.const_data_ptr<scalar_t>();
    const scalar_t* f = F.const_data_ptr<scalar_t>();
    const scalar_t* p = P.const_data_ptr<scalar_t>();
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    scalar_t* df = dF.mutable_data_ptr<scalar_t>();
    scalar_t* dp = dP.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N, grain(n + m), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const scalar_t si = sp[i];
        const scalar_t* gi = g + i * m;
        const scalar_t* fi = f + i * m;
        scalar_t* dfi = df + i * m;
        scalar_t gs = 0;
        for (int64_t j = 0; j < m; ++j) {
          gs += gi[j] * fi[j];
          dfi[j] = si * gi[j];
        }
        // s = ‖P_i‖ is not differentiable at P_i = 0 (x = 0): the subgradient 0.
        const scalar_t r = si > 0 ? gs / si : scalar_t(0);
        const scalar_t* pi = p + i * n;
        scalar_t* dpi = dp + i * n;
        for (int64_t k = 0; k < n; ++k) dpi[k] = r * pi[k];
      }
    });
  });
  return {dF, dP};
}

const detail::MatrixNormalElementwise& cpu_elementwise() {
  static const detail::MatrixNormalElementwise ew{&cpu_scale_add, &cpu_scale_backward};
  return ew;
}

void check_sample_values(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E,
                         const char* op) {
  detail::check_matrix_normal_sample_arguments(M, A, B, E, op);
  detail::check_no_nan(M, op, "M");
  detail::check_no_nan(A, op, "A");
  detail::check_no_nan(B, op, "B");
  detail::check_no_nan(E, op, "E");
  detail::check_positive_diagonal(A, op, "A");
  detail::check_positive_diagonal(B, op, "B");
}

void check_linear_values(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                         const at::Tensor& E, const std::optional<at::Tensor>& bias, const char* op) {
  detail::check_matrix_normal_linear_arguments(X, M, A, B, E, bias, op);
  detail::check_no_nan(X, op, "X");
  detail::check_no_nan(M, op, "M");
  detail::check_no_nan(A, op, "A");
  detail::check_no_nan(B, op, "B");
  detail::check_no_nan(E, op, "E");
  if (bias.has_value() && bias->defined()) detail::check_no_nan(*bias, op, "bias");
  detail::check_positive_diagonal(A, op, "A");
  detail::check_positive_diagonal(B, op, "B");
}

at::Tensor sample_cpu(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E) {
  MANTRA_COUNT_KERNEL_CALL("matrix_normal_sample.CPU");
  check_sample_values(M, A, B, E, "mantra::matrix_normal_sample");
  return std::get<0>(detail::matrix_normal_sample_traced_generic(M, A, B, E));
}

std::tuple<at::Tensor, at::Tensor> sample_traced_cpu(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                                                     const at::Tensor& E) {
  MANTRA_COUNT_KERNEL_CALL("_matrix_normal_sample_traced.CPU");
  check_sample_values(M, A, B, E, "mantra::matrix_normal_sample");
  return detail::matrix_normal_sample_traced_generic(M, A, B, E);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sample_backward_cpu(const at::Tensor& grad, const at::Tensor& A,
                                                                   const at::Tensor& B, const at::Tensor& E,
                                                                   const at::Tensor& T, bool grad_E) {
  MANTRA_COUNT_KERNEL_CALL("_matrix_normal_sample_backward.CPU");
  return detail::matrix_normal_sample_backward_generic(grad, A, B, E, T, grad_E);
}

at::Tensor linear_cpu(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                      const at::Tensor& E, const std::optional<at::Tensor>& bias) {
  MANTRA_COUNT_KERNEL_CALL("matrix_normal_linear.CPU");
  check_linear_values(X, M, A, B, E, bias, "mantra::matrix_normal_linear");
  return std::get<0>(detail::matrix_normal_linear_traced_generic(X, M, A, B, E, bias, cpu_elementwise()));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> linear_traced_cpu(const at::Tensor& X, const at::Tensor& M,
                                                                             const at::Tensor& A, const at::Tensor& B,
                                                                             const at::Tensor& E,
                                                                             const std::optional<at::Tensor>& bias) {
  MANTRA_COUNT_KERNEL_CALL("_matrix_normal_linear_traced.CPU");
  check_linear_values(X, M, A, B, E, bias, "mantra::matrix_normal_linear");
  return detail::matrix_normal_linear_traced_generic(X, M, A, B, E, bias, cpu_elementwise());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> linear_backward_cpu(
    const at::Tensor& grad, const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
    const at::Tensor& E, const at::Tensor& P, const at::Tensor& s, const at::Tensor& F, bool grad_X, bool grad_E) {
  MANTRA_COUNT_KERNEL_CALL("_matrix_normal_linear_backward.CPU");
  return detail::matrix_normal_linear_backward_generic(grad, X, M, A, B, E, P, s, F, grad_X, grad_E,
                                                       cpu_elementwise());
}

}  // namespace
}  // namespace mantra

TORCH_LIBRARY_IMPL(mantra, CPU, m) {
  m.impl("matrix_normal_sample", &mantra::sample_cpu);
  m.impl("_matrix_normal_sample_traced", &mantra::sample_traced_cpu);
  m.impl("_matrix_normal_sample_backward", &mantra::sample_backward_cpu);
  m.impl("matrix_normal_linear", &mantra::linear_cpu);
  m.impl("_matrix_normal_linear_traced", &mantra::linear_traced_cpu);
  m.impl("_matrix_normal_linear_backward", &mantra::linear_backward_cpu);
}
