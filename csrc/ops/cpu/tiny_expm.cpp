#include "ops/cpu/tiny_expm.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/cpu/tiny_kernels.h"
#include "ops/expm_algorithm.h"

namespace mantra::detail {
namespace {

using tiny::kTinyMaxSize;

// The schemes of expm_algorithm.cpp as plain data for the kernels.
const std::array<tiny::FlatScheme, kNumDegrees>& flat_schemes() {
  static const std::array<tiny::FlatScheme, kNumDegrees> table = [] {
    std::array<tiny::FlatScheme, kNumDegrees> t{};
    for (int d = 0; d < kNumDegrees; ++d) {
      const ExpmScheme& s = expm_schemes()[d];
      TORCH_INTERNAL_ASSERT(s.registers <= tiny::kMaxRegisters && s.steps.size() <= 16);
      t[d].registers = s.registers;
      t[d].num_steps = static_cast<int>(s.steps.size());
      for (size_t i = 0; i < s.steps.size(); ++i) {
        const ExpmStep& st = s.steps[i];
        tiny::FlatStep& f = t[d].steps[i];
        f = tiny::FlatStep{st.product ? 1 : 0, st.out, st.a, st.b, st.addend, st.identity, 0, {}, {}};
        for (const ExpmTerm& term : st.terms) {
          if (term.coef == 0.0) continue;  // skipped, as the batched path skips it
          TORCH_INTERNAL_ASSERT(f.num_terms < tiny::kMaxTerms);
          f.src[f.num_terms] = term.src;
          f.coef[f.num_terms] = term.coef;
          ++f.num_terms;
        }
      }
    }
    return t;
  }();
  return table;
}

// exp (G null) or the gradient of <G, exp(A)> for every matrix of the contiguous (B, n, n) A.
template <typename T, typename Kernel>
void run(Kernel kernel, const T* A, const T* G, T* out, int64_t batch, int64_t n, const ExpmPlan& plan) {
  // The batch ordered by plan, so that the kernel runs matrices sharing one together.
  std::vector<int64_t> order(batch);
  std::iota(order.begin(), order.end(), 0);
  const auto& d = plan.degree_index;
  const auto& s = plan.squarings;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return d[x] != d[y] ? d[x] < d[y] : s[x] < s[y]; });
  // About 32k flops per task: one 32×32 matrix, hundreds of 2×2 ones.
  const int64_t grain = std::max<int64_t>(8, 32768 / (n * n * n * 8));
  const tiny::FlatScheme* schemes = flat_schemes().data();
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    int64_t max_s = 0;
    for (int64_t p = begin; p < end; ++p) max_s = std::max(max_s, s[order[p]]);
    std::vector<T> scratch(tiny::expm_scratch_size(n, max_s));
    kernel(A, G, out, n, begin, end, order.data(), d.data(), s.data(), schemes, scratch.data());
  });
}

// Runs the kernel on A3 (and G3 when defined) in their compute dtype.
at::Tensor run_tensor(const at::Tensor& A3, const at::Tensor& G3, const ExpmPlan& plan) {
  at::Tensor out = at::empty_like(A3);
  const tiny::Kernels& k = tiny::kernels();
  if (A3.scalar_type() == at::kFloat) {
    run<float>(k.expm_f, A3.const_data_ptr<float>(), G3.defined() ? G3.const_data_ptr<float>() : nullptr,
               out.mutable_data_ptr<float>(), A3.size(0), A3.size(-1), plan);
  } else {
    TORCH_INTERNAL_ASSERT(A3.scalar_type() == at::kDouble);
    run<double>(k.expm_d, A3.const_data_ptr<double>(), G3.defined() ? G3.const_data_ptr<double>() : nullptr,
                out.mutable_data_ptr<double>(), A3.size(0), A3.size(-1), plan);
  }
  return out;
}

}  // namespace

bool tiny_expm_serves(const at::Tensor& A) {
  return A.defined() && A.is_cpu() && A.dim() >= 2 && A.size(-1) == A.size(-2) && A.size(-1) >= 1 &&
         A.size(-1) <= kTinyMaxSize;
}

at::Tensor tiny_expm_forward(const at::Tensor& A) {
  check_expm_argument(A, "mantra::expm", "A");
  if (A.numel() == 0) return at::empty(A.sizes(), A.options());
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = expm_plan(A3, "mantra::expm", "A");
  return from_batch(run_tensor(A3, at::Tensor(), plan), A.sizes(), A.scalar_type());
}

at::Tensor tiny_expm_backward(const at::Tensor& grad, const at::Tensor& A) {
  check_expm_backward_arguments(grad, A, "mantra::expm_backward");
  if (A.numel() == 0) return at::zeros(A.sizes(), A.options());
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = expm_plan(A3, "mantra::expm_backward", "A");
  return from_batch(run_tensor(A3, to_batch(grad), plan), A.sizes(), A.scalar_type());
}

std::tuple<at::Tensor, std::vector<at::Tensor>> tiny_expm_traced(const at::Tensor& A) {
  check_expm_argument(A, "mantra::expm", "A");
  if (A.numel() == 0) return {at::empty(A.sizes(), A.options()), {}};
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = expm_plan(A3, "mantra::expm", "A");
  return {from_batch(run_tensor(A3, at::Tensor(), plan), A.sizes(), A.scalar_type()), {pack_plan(plan)}};
}

at::Tensor tiny_expm_traced_backward(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace) {
  check_expm_backward_arguments(grad, A, "mantra::_expm_traced_backward");
  if (A.numel() == 0) return at::zeros(A.sizes(), A.options());
  TORCH_CHECK_VALUE(trace.size() == 1, "mantra::_expm_traced_backward: argument 'trace' must be the trace "
                    "mantra::_expm_traced returned for 'A' (for ", A.size(-1), "x", A.size(-1),
                    " CPU matrices: [plan]), got a list of ", trace.size(), " tensors");
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = unpack_plan(trace[0], A3.size(0));
  return from_batch(run_tensor(A3, to_batch(grad), plan), A.sizes(), A.scalar_type());
}

}  // namespace mantra::detail
