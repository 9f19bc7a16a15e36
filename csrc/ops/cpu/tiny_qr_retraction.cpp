#include "ops/cpu/tiny_qr_retraction.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "ops/cpu/tiny_kernels.h"
#include "ops/qr_retraction_algorithm.h"

namespace mantra::detail {
namespace {

using tiny::kTinyMaxSize;

int64_t grain_for(int64_t n, int64_t k) { return std::max<int64_t>(1, 32768 / (8 * n * k * k)); }

}  // namespace

bool tiny_qr_retraction_serves(const at::Tensor& X) {
  return X.defined() && X.is_cpu() && X.dim() >= 2 && X.size(-1) >= 1 && X.size(-2) >= X.size(-1) &&
         X.size(-2) <= kTinyMaxSize;
}

std::tuple<at::Tensor, at::Tensor> tiny_qr_retraction_factors(const at::Tensor& X, int64_t* householder_count,
                                                              int64_t* one_pass_count) {
  check_qr_retraction_argument(X, "mantra::qr_retraction", "X");
  if (householder_count) *householder_count = 0;
  if (one_pass_count) *one_pass_count = 0;
  const std::vector<int64_t> rs = qr_r_shape(X.sizes());
  if (X.numel() == 0) return {at::empty(X.sizes(), X.options()), at::zeros(rs, X.options())};
  const at::Tensor X3 = to_batch3_rows_or_columns(X);
  const bool x_columns = !X3.is_contiguous();
  const int64_t batch = X3.size(0), n = X3.size(1), k = X3.size(2);
  at::Tensor Q3 = at::empty({batch, n, k}, X3.options());  // row-major (empty_like would keep X3's layout)
  at::Tensor R3 = at::empty({batch, k, k}, X3.options());
  std::vector<uint8_t> ok(batch, tiny::kQrHouseholder);
  const tiny::Kernels& kern = tiny::kernels();
  const auto run = [&](auto kernel, auto* x, auto* q, auto* r) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(x)>>;
    at::parallel_for(0, batch, grain_for(n, k), [&](int64_t begin, int64_t end) {
      std::vector<T> w(tiny::qr_scratch_size(n, k, sizeof(T)));
      kernel(x, x_columns, q, r, ok.data(), n, k, begin, end, w.data());
    });
  };
  if (X3.scalar_type() == at::kFloat) {
    run(kern.qr_f, X3.const_data_ptr<float>(), Q3.mutable_data_ptr<float>(), R3.mutable_data_ptr<float>());
  } else {
    TORCH_INTERNAL_ASSERT(X3.scalar_type() == at::kDouble);
    run(kern.qr_d, X3.const_data_ptr<double>(), Q3.mutable_data_ptr<double>(), R3.mutable_data_ptr<double>());
  }
  return finish_qr_branches(X, X3, Q3, R3, ok, tiny::kQrHouseholder, tiny::kQrOnePass, householder_count,
                            one_pass_count);
}

at::Tensor tiny_qr_retraction_backward(const at::Tensor& grad, const at::Tensor& Q, const at::Tensor& R) {
  check_qr_retraction_backward_arguments(grad, Q, R, "mantra::qr_retraction_backward");
  if (Q.numel() == 0) return at::zeros(Q.sizes(), Q.options());
  const at::Tensor G3 = to_batch3(grad), Q3 = to_batch3(Q), R3 = to_batch3(R);
  const int64_t batch = Q3.size(0), n = Q3.size(1), k = Q3.size(2);
  at::Tensor out = at::empty_like(Q3);
  const tiny::Kernels& kern = tiny::kernels();
  const auto run = [&](auto kernel, auto* g, auto* q, auto* r, auto* o) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(g)>>;
    at::parallel_for(0, batch, grain_for(n, k), [&](int64_t begin, int64_t end) {
      std::vector<T> w(tiny::qr_scratch_size(n, k, sizeof(T)));
      kernel(g, q, r, o, n, k, begin, end, w.data());
    });
  };
  if (Q3.scalar_type() == at::kFloat) {
    run(kern.qr_backward_f, G3.const_data_ptr<float>(), Q3.const_data_ptr<float>(), R3.const_data_ptr<float>(),
        out.mutable_data_ptr<float>());
  } else {
    TORCH_INTERNAL_ASSERT(Q3.scalar_type() == at::kDouble);
    run(kern.qr_backward_d, G3.const_data_ptr<double>(), Q3.const_data_ptr<double>(), R3.const_data_ptr<double>(),
        out.mutable_data_ptr<double>());
  }
  return from_batch3(out, Q.sizes(), Q.scalar_type());
}

}  // namespace mantra::detail
