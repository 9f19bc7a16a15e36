#include "ops/expm_skew.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "manifolds/linalg.h"
#include "ops/kernel_calls.h"

namespace mantra::detail {
namespace {

// The route rule, measured at 1 thread (CPU time; README, issue-14 section). eigh of AᵀA takes
// 10–18 n×n GEMM-times for n ≤ 224 and 4.5–5.3 at n = 425 and 1024, so the route's forward is
// 8–12 GEMM-times against 5 + s products, its forward+backward 15–27 against about 3(5 + s).
// Route time / squaring time on dense skew inputs scaled to s squarings:
//   value only:    n = 224: 1.4–1.6 (float32), 0.9–1.2 (float64) for s = 3…6; n = 320 and
//                  425, s = 5: 0.66–0.79; n = 425, s = 4: 0.86–0.96;
//   with gradient: n = 128, 160 in float32: 0.87–1.22 for s = 3…6; n = 224, s ≥ 3: 0.54–0.82;
//                  float64 n = 160, s ≥ 3: 0.56–0.81.
// Hence: value only (expm) n ≥ 320 and s ≥ 5; with a gradient (the traced op, expm_backward)
// n ≥ 192 and s ≥ 3.
struct Thresholds {
  int64_t min_n;
  int64_t min_squarings;
};
constexpr Thresholds kValueThresholds{320, 5};
constexpr Thresholds kGradientThresholds{192, 3};
// Accuracy: the route's error ~ c·u·λ_max/2 against scaling and squaring's ~ c·u·2^s; taken
// where λ_max/2 ≤ kSkewMargin·2^s. On dense random skew inputs (n = 224…1024, entries of
// variance 1/2) λ_max/2 is 1.6–4× 2^s and the measured errors of the two routes are within 2×
// of each other (either way); the margin keeps the route's error bound within 8× of the
// squarings' on every input it takes.
constexpr double kSkewMargin = 8.0;
// Power iterations for the estimate of λ_max (from the largest column, a lower estimate:
// within 7 % after 8 iterations on those inputs; the margin absorbs it).
constexpr int kPowerIterations = 8;

std::atomic<int64_t>& route_mode() {
  static std::atomic<int64_t> mode{0};
  return mode;
}

// A + Aᵀ == 0 bitwise (so a zero diagonal), in tiles so that both reads stay in cache.
template <typename T>
bool exactly_skew(const T* a, int64_t n) {
  constexpr int64_t kTile = 32;
  for (int64_t i0 = 0; i0 < n; i0 += kTile) {
    const int64_t i1 = std::min(i0 + kTile, n);
    for (int64_t j0 = i0; j0 < n; j0 += kTile) {
      const int64_t j1 = std::min(j0 + kTile, n);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = std::max(j0, i); j < j1; ++j)
          if (a[i * n + j] != -a[j * n + i]) return false;
    }
  }
  return true;
}

std::vector<bool> skew_matrices(const at::Tensor& A3) {
  const int64_t B = A3.size(0), n = A3.size(-1);
  std::vector<char> out(B, 0);
  AT_DISPATCH_FLOATING_TYPES(A3.scalar_type(), "mantra::expm_skew_check", [&] {
    const scalar_t* a = A3.const_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = exactly_skew(a + i * n * n, n) ? 1 : 0;
    });
  });
  return std::vector<bool>(out.begin(), out.end());
}

// Lower estimates of λ_max(AᵀA) = ‖A‖₂² for the skew matrices C (m, n, n): for skew C,
// AᵀA x = −C(C x), started from the largest row (= column) of C.
std::vector<double> lambda_max_estimates(const at::Tensor& C) {
  const int64_t m = C.size(0), n = C.size(-1);
  const at::Tensor j = C.square().sum(-1).argmax(-1);  // (m)
  at::Tensor x = C.gather(1, j.view({m, 1, 1}).expand({m, 1, n})).mT().contiguous();  // (m, n, 1)
  for (int it = 0; it < kPowerIterations; ++it) {
    x = at::bmm(C, at::bmm(C, x));
    x = x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::min());
  }
  const at::Tensor est = at::bmm(C, x).square().sum({1, 2}).to(at::kDouble).contiguous();
  const double* e = est.const_data_ptr<double>();
  return std::vector<double>(e, e + m);
}

int64_t expm_skew_route_op(int64_t mode) { return set_expm_skew_route_mode(mode); }

}  // namespace

int64_t set_expm_skew_route_mode(int64_t mode) {
  TORCH_CHECK_VALUE(mode >= -1 && mode <= 1, "mantra::_expm_skew_route: argument 'mode' must be -1 (never), "
                    "0 (the rule) or 1 (every exactly skew matrix), got ", mode);
  return route_mode().exchange(mode);
}

int64_t expm_skew_route_mode() { return route_mode().load(); }

void expm_choose_routes(const at::Tensor& A3, ExpmPlan& plan, ExpmPurpose purpose) {
  const int64_t mode = expm_skew_route_mode();
  if (mode < 0 || !A3.is_cpu() || A3.size(0) == 0 || A3.size(-1) == 0) return;
  const auto t = A3.scalar_type();
  if (t != at::kFloat && t != at::kDouble) return;
  const Thresholds th = purpose == ExpmPurpose::Value ? kValueThresholds : kGradientThresholds;
  const int64_t B = A3.size(0), n = A3.size(-1);
  if (mode == 0 && n < th.min_n) return;
  const bool any_squarings = std::any_of(plan.squarings.begin(), plan.squarings.end(),
                                         [&](int64_t s) { return s >= th.min_squarings; });
  if (mode == 0 && !any_squarings) return;
  const std::vector<bool> skew = skew_matrices(A3);
  std::vector<int64_t> candidates;
  for (int64_t i = 0; i < B; ++i)
    if (skew[i] && (mode == 1 || plan.squarings[i] >= th.min_squarings)) candidates.push_back(i);
  if (candidates.empty()) return;
  plan.skew.assign(B, false);
  if (mode == 1) {
    for (int64_t i : candidates) plan.skew[i] = true;
    return;
  }
  const bool all = static_cast<int64_t>(candidates.size()) == B;
  const at::Tensor C =
      all ? A3 : A3.index_select(0, at::tensor(candidates, at::TensorOptions().dtype(at::kLong)));
  const std::vector<double> est = lambda_max_estimates(C);
  for (size_t k = 0; k < candidates.size(); ++k) {
    const int64_t i = candidates[k];
    plan.skew[i] = est[k] / 2 <= kSkewMargin * std::ldexp(1.0, static_cast<int>(plan.squarings[i]));
  }
  if (std::none_of(plan.skew.begin(), plan.skew.end(), [](bool b) { return b; })) plan.skew.clear();
}

at::Tensor expm_skew_run(const at::Tensor& A3, std::vector<at::Tensor>* trace) {
  // Counts matrices (not calls) so that tests see how many took the route.
  static std::atomic<int64_t>& calls = kernel_call_counter("expm_skew.CPU");
  calls.fetch_add(A3.size(0), std::memory_order_relaxed);
  const at::Tensor S = at::bmm(A3.mT(), A3);
  auto [lam, V] = linalg::eigh(S);
  lam = lam.clamp_min(0);  // S is PSD; rounding may leave a zero angle slightly negative
  const auto [f, g] = linalg::cos_sinc_sqrt(lam);
  const at::Tensor P = at::bmm(A3, V);
  at::Tensor X = P * g.unsqueeze(-2);
  X.addcmul_(V, f.unsqueeze(-2));
  at::Tensor E = at::bmm(X, V.mT());
  if (trace) {
    trace->push_back(V);
    trace->push_back(lam);
    trace->push_back(P);
  }
  return E;
}

at::Tensor expm_skew_reverse(const at::Tensor& G3, const at::Tensor& A3, at::TensorList trace) {
  static std::atomic<int64_t>& calls = kernel_call_counter("expm_skew_reverse.CPU");
  calls.fetch_add(A3.size(0), std::memory_order_relaxed);
  TORCH_INTERNAL_ASSERT(trace.size() == kSkewTraceSize, "expm trace does not match its plan");
  const at::Tensor &V = trace[0], &lam = trace[1], &P = trace[2];
  TORCH_INTERNAL_ASSERT(V.sizes() == A3.sizes() && P.sizes() == A3.sizes() && lam.dim() == 2 &&
                            lam.size(0) == A3.size(0) && lam.size(1) == A3.size(-1),
                        "expm trace does not match its plan");
  const auto [F1, G1] = linalg::cos_sinc_sqrt_divided_differences(lam);
  const at::Tensor g = linalg::cos_sinc_sqrt(lam).second;
  const at::Tensor W = at::bmm(G3, V);
  at::Tensor M = at::bmm(V.mT(), W);
  M.mul_(F1);
  M.addcmul_(at::bmm(P.mT(), W), G1);
  at::Tensor X = at::bmm(P, M);
  X.addcmul_(W, g.unsqueeze(-2));
  at::Tensor grad = at::bmm(X, V.mT());
  grad.baddbmm_(at::bmm(V, M), P.mT(), /*beta=*/1, /*alpha=*/-1);
  return grad;
}

}  // namespace mantra::detail

TORCH_LIBRARY_FRAGMENT(mantra, m) {
  // Private (tests): the route mode of expm's eigendecomposition route for skew input
  // (0 the rule, 1 always, −1 never); returns the previous mode.
  m.def("_expm_skew_route(int mode) -> int", &mantra::detail::expm_skew_route_op);
}
