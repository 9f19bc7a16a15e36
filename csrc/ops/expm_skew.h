// The eigendecomposition route of expm for exactly skew-symmetric A on the CPU (issue 14).
//
// For any square A, as power series, exp(A) = cosh(A) + sinh(A) = f(S) + A·g(S) with S = −A²,
// f(s) = cos√s and g(s) = sin√s/√s (both entire in s). When A is skew, S = AᵀA is symmetric
// positive semidefinite, S = V diag(λ) Vᵀ, and with P = A·V
//   exp(A) = (V diag(f(λ)) + P diag(g(λ))) Vᵀ:
// one GEMM for S, one symmetric eigh (linalg::eigh), two GEMMs: about 8 GEMM-times at n ≥ 425
// against 5 + s products for scaling and squaring with s squarings (s = 6–10 on large-norm
// inputs). The reverse mode is the adjoint of that map for a general direction dA (the op's
// input is a general matrix, so the gradient is the full adjoint, not its skew part):
//   Ā = (W diag(g) + P M) Vᵀ − (V M) Pᵀ,  W = Ḡ V,  M = (VᵀW)∘F1 + (PᵀW)∘G1,
// F1, G1 the divided differences (Daleckii–Krein / Loewner matrices) of f and g at λ; 7 GEMMs.
//
// Accuracy: λ carries an absolute error of about u·λ_max (λ_max = ‖A‖₂²) and |f'|, |g'| ≤ 1/2,
// so this route's forward error is about c·u·λ_max/2, against c·u·2^s for s squarings; the
// route is taken only where λ_max/2 ≤ kSkewMargin·2^s (rule in expm_skew.cpp).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "ops/expm_algorithm.h"

namespace mantra::detail {

// What the caller computes: the value only (expm), or a gradient too (_expm_traced,
// expm_backward); the route pays earlier for the latter, whose backward is 7 GEMMs against
// about twice the forward's products.
enum class ExpmPurpose { Value, Gradient };

// Marks in plan.skew the matrices of A3 (B, n, n) on the CPU that take this route: exactly
// skew (A + Aᵀ == 0 bitwise), n and the plan's squarings at least the purpose's thresholds,
// and the accuracy rule on an estimate of λ_max (8 power iterations on AᵀA). The testing mode
// (expm_skew_route_mode) can force the route for every exactly skew matrix or switch it off.
void expm_choose_routes(const at::Tensor& A3, ExpmPlan& plan, ExpmPurpose purpose);

// The route for every matrix of A3 (B, n, n): exp(A3), appending (V, λ, P) to the trace.
at::Tensor expm_skew_run(const at::Tensor& A3, std::vector<at::Tensor>* trace);
// Gradient of <G3, exp(A3)> from the trace (V, λ, P) of expm_skew_run.
at::Tensor expm_skew_reverse(const at::Tensor& G3, const at::Tensor& A3, at::TensorList trace);
// How many tensors expm_skew_run appends to a trace.
constexpr size_t kSkewTraceSize = 3;

// Testing hook (also the private op mantra::_expm_skew_route): 0 the rule (default), 1 every
// exactly skew CPU matrix of the general path (n > 32) takes the route, −1 none does. Returns
// the previous mode.
int64_t set_expm_skew_route_mode(int64_t mode);
int64_t expm_skew_route_mode();

}  // namespace mantra::detail
