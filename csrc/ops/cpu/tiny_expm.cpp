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
      // Needed: the operands of products, and (transitively) what the needed combines read.
      std::vector<bool> needed = expm_registers_to_keep(s);
      std::vector<bool> is_product(s.registers, false);
      std::vector<bool> written(s.registers, false);
      for (const ExpmStep& st : s.steps) {
        TORCH_INTERNAL_ASSERT(!written[st.out] && st.out > 0);  // each register written once
        written[st.out] = true;
      }
      for (auto it = s.steps.rbegin(); it != s.steps.rend(); ++it) {
        is_product[it->out] = it->product;
        if (!it->product && needed[it->out])
          for (const ExpmTerm& term : it->terms)
            if (term.coef != 0.0) needed[term.src] = true;
      }
      t[d].kept = 0;
      for (int r = 0; r < tiny::kMaxRegisters; ++r) {
        const bool in_range = r < s.registers;
        t[d].slot[r] = in_range && r > 0 && needed[r] && is_product[r] ? t[d].kept++ : -1;
        t[d].replay[r] = in_range && r > 0 && needed[r] && !is_product[r];
      }
      // The kernels alias the last register to the first power (tiny_kernels_impl.h).
      TORCH_INTERNAL_ASSERT(t[d].slot[s.registers - 1] < 0);
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

// The batch ordered by plan and cut into the kernel's groups (matrices sharing a plan, up to
// expm_lanes(n) of them, taken greedily), with where each group's trace starts.
struct Groups {
  std::vector<int64_t> order;
  std::vector<int64_t> start;         // positions in order; one more than groups
  std::vector<int64_t> trace_offset;  // elements; the last is the trace's size
};

Groups make_groups(const ExpmPlan& plan, int64_t n) {
  const auto batch = static_cast<int64_t>(plan.degree_index.size());
  const auto& d = plan.degree_index;
  const auto& s = plan.squarings;
  const tiny::FlatScheme* schemes = flat_schemes().data();
  const int lanes = tiny::expm_lanes(n);
  Groups g;
  // A stable counting sort by (degree, squarings): O(batch) serial work in front of the
  // parallel kernels, where a comparison sort is O(batch log batch).
  const int64_t max_s = batch ? *std::max_element(s.begin(), s.end()) : 0;
  const auto key = [&](int64_t i) { return d[i] * (max_s + 1) + s[i]; };
  std::vector<int64_t> next(static_cast<size_t>(kNumDegrees * (max_s + 1)) + 1, 0);
  for (int64_t i = 0; i < batch; ++i) ++next[key(i) + 1];
  std::partial_sum(next.begin(), next.end(), next.begin());
  g.order.resize(batch);
  for (int64_t i = 0; i < batch; ++i) g.order[next[key(i)]++] = i;
  g.trace_offset.push_back(0);
  for (int64_t p = 0; p < batch;) {
    const int64_t first = g.order[p];
    int64_t c = 1;
    while (c < lanes && p + c < batch && d[g.order[p + c]] == d[first] && s[g.order[p + c]] == s[first]) ++c;
    g.start.push_back(p);
    g.trace_offset.push_back(g.trace_offset.back() + tiny::expm_trace_group_size(schemes[d[first]], s[first], n));
    p += c;
  }
  g.start.push_back(batch);
  return g;
}

// exp (G null) or the gradient of <G, exp(A)> for every matrix of the contiguous (B, n, n) A;
// trace_out: also write the trace (groups.trace_offset.back() elements); trace_in: the
// gradient from that trace.
template <typename T, typename Kernel>
void run(Kernel kernel, const T* A, const T* G, T* out, T* trace_out, const T* trace_in, int64_t n,
         const ExpmPlan& plan, const Groups& groups) {
  const auto& s = plan.squarings;
  const auto& order = groups.order;
  // About 32k flops per task: one 32×32 matrix, hundreds of 2×2 ones.
  const int64_t grain = std::max<int64_t>(1, std::max<int64_t>(8, 32768 / (n * n * n * 8)) / tiny::expm_lanes(n));
  const tiny::FlatScheme* schemes = flat_schemes().data();
  const int64_t num_groups = static_cast<int64_t>(groups.start.size()) - 1;
  at::parallel_for(0, num_groups, grain, [&](int64_t g0, int64_t g1) {
    const int64_t begin = groups.start[g0], end = groups.start[g1];
    int64_t max_s = 0;
    for (int64_t p = begin; p < end; ++p) max_s = std::max(max_s, s[order[p]]);
    std::vector<T> scratch(tiny::expm_scratch_size(n, max_s));
    const int64_t offset = groups.trace_offset[g0];
    kernel(A, G, out, trace_out ? trace_out + offset : nullptr, trace_in ? trace_in + offset : nullptr, n, begin,
           end, order.data(), plan.degree_index.data(), s.data(), schemes, scratch.data());
  });
}

// Runs the kernel on A3 (and G3 when defined) in their compute dtype, writing (trace_out
// defined) or reading (trace_in defined) the trace.
at::Tensor run_tensor(const at::Tensor& A3, const at::Tensor& G3, const ExpmPlan& plan, const Groups& groups,
                      const at::Tensor& trace_out = at::Tensor(), const at::Tensor& trace_in = at::Tensor()) {
  at::Tensor out = at::empty_like(A3);
  const tiny::Kernels& k = tiny::kernels();
  const int64_t n = A3.size(-1);
  if (A3.scalar_type() == at::kFloat) {
    run<float>(k.expm_f, A3.const_data_ptr<float>(), G3.defined() ? G3.const_data_ptr<float>() : nullptr,
               out.mutable_data_ptr<float>(), trace_out.defined() ? trace_out.mutable_data_ptr<float>() : nullptr,
               trace_in.defined() ? trace_in.const_data_ptr<float>() : nullptr, n, plan, groups);
  } else {
    TORCH_INTERNAL_ASSERT(A3.scalar_type() == at::kDouble);
    run<double>(k.expm_d, A3.const_data_ptr<double>(), G3.defined() ? G3.const_data_ptr<double>() : nullptr,
                out.mutable_data_ptr<double>(), trace_out.defined() ? trace_out.mutable_data_ptr<double>() : nullptr,
                trace_in.defined() ? trace_in.const_data_ptr<double>() : nullptr, n, plan, groups);
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
  return from_batch(run_tensor(A3, at::Tensor(), plan, make_groups(plan, A3.size(-1))), A.sizes(), A.scalar_type());
}

at::Tensor tiny_expm_backward(const at::Tensor& grad, const at::Tensor& A) {
  check_expm_backward_arguments(grad, A, "mantra::expm_backward");
  if (A.numel() == 0) return at::zeros(A.sizes(), A.options());
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = expm_plan(A3, "mantra::expm_backward", "A");
  return from_batch(run_tensor(A3, to_batch(grad), plan, make_groups(plan, A3.size(-1))), A.sizes(),
                    A.scalar_type());
}

std::tuple<at::Tensor, std::vector<at::Tensor>> tiny_expm_traced(const at::Tensor& A) {
  check_expm_argument(A, "mantra::expm", "A");
  if (A.numel() == 0) return {at::empty(A.sizes(), A.options()), {}};
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = expm_plan(A3, "mantra::expm", "A");
  const Groups groups = make_groups(plan, A3.size(-1));
  at::Tensor trace = at::empty({groups.trace_offset.back()}, A3.options());
  at::Tensor E = run_tensor(A3, at::Tensor(), plan, groups, trace);
  return {from_batch(E, A.sizes(), A.scalar_type()), {pack_plan(plan), std::move(trace)}};
}

at::Tensor tiny_expm_traced_backward(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace) {
  check_expm_backward_arguments(grad, A, "mantra::_expm_traced_backward");
  if (A.numel() == 0) return at::zeros(A.sizes(), A.options());
  const int64_t n = A.size(-1);
  TORCH_CHECK_VALUE(trace.size() == 2, "mantra::_expm_traced_backward: argument 'trace' must be the trace "
                    "mantra::_expm_traced returned for 'A' (for ", n, "x", n,
                    " CPU matrices: [plan, intermediates]), got a list of ", trace.size(), " tensors");
  const at::Tensor A3 = to_batch(A);
  const ExpmPlan plan = unpack_plan(trace[0], A3.size(0));
  const Groups groups = make_groups(plan, n);
  const at::Tensor& data = trace[1];
  TORCH_CHECK_VALUE(data.defined() && data.is_cpu() && data.scalar_type() == A3.scalar_type() && data.dim() == 1 &&
                        data.is_contiguous() && data.numel() == groups.trace_offset.back(),
                    "mantra::_expm_traced_backward: argument 'trace' must hold the intermediates of 'A' (a "
                    "contiguous 1-D ", A3.scalar_type(), " CPU tensor of ", groups.trace_offset.back(),
                    " elements for its plan), got ",
                    data.defined() ? c10::str("a ", data.scalar_type(), " tensor of shape ", data.sizes(), " on ",
                                              data.device())
                                   : std::string("an undefined tensor"));
  return from_batch(run_tensor(A3, to_batch(grad), plan, groups, at::Tensor(), data), A.sizes(), A.scalar_type());
}

}  // namespace mantra::detail
