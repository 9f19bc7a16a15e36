// Matrix exponential by scaling and squaring of optimized Taylor polynomials (Bader, Blanes &
// Casas 2019), written with ATen operations so it runs on any device, plus its exact reverse
// mode: the backward is the adjoint of every product the forward did, so it costs two products
// per forward product (the Fréchet derivative L(Aᵀ, G) of the approximant actually computed).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <tuple>
#include <vector>

namespace mantra::detail {

constexpr int kNumDegrees = 6;
constexpr std::array<int, kNumDegrees> kDegrees = {1, 2, 4, 8, 12, 18};

// A polynomial is evaluated on a small register file; register 0 holds the (scaled) matrix,
// the last register the polynomial.
//   Combine: R[out] = identity·I + Σ coef_k R[src_k]   (terms with coef 0 are skipped)
//   Product: R[out] = R[a]·R[b] (+ R[addend] when addend >= 0)
// The batched path (ATen) and the tiny-matrix CPU path (cpu/tiny_expm.h) walk the same schemes.
struct ExpmTerm {
  int src;
  double coef;
};
struct ExpmStep {
  bool product;
  int out;
  double identity = 0.0;        // Combine
  std::vector<ExpmTerm> terms;  // Combine
  int a = -1, b = -1, addend = -1;  // Product
};
struct ExpmScheme {
  int registers;
  std::vector<ExpmStep> steps;
};

// Evaluation schemes of the degree-m Taylor polynomial, m = kDegrees[i], with 0 … 5 products.
const std::array<ExpmScheme, kNumDegrees>& expm_schemes();
// Which registers the reverse sweep reads: the operands of products.
std::vector<bool> expm_registers_to_keep(const ExpmScheme& scheme);

// More squarings than any finite float64 norm needs (2^1024 / θ₁₈ < 2^1025); a plan read back
// from a trace is checked against it.
constexpr int64_t kMaxSquarings = 1100;

// Per matrix of the flattened batch: which Taylor degree and how many squarings, and whether
// it takes the eigendecomposition route for skew input instead (expm_skew.h; empty: none does).
struct ExpmPlan {
  std::vector<int64_t> degree_index;  // into the degree table (1, 2, 4, 8, 12, 18)
  std::vector<int64_t> squarings;
  std::vector<bool> skew;
};
// True when some matrix of the plan takes the skew route.
bool plan_has_skew(const ExpmPlan& plan);

// Validates the argument of expm (name it `arg`), throwing with the expected and actual value.
void check_expm_argument(const at::Tensor& A, const char* op, const char* arg);
// Validates the arguments (grad, A) of expm_backward and _expm_traced_backward: A as above,
// grad of the shape, dtype and device of A.
void check_expm_backward_arguments(const at::Tensor& grad, const at::Tensor& A, const char* op);

// The dtype the exponential is computed in: float32 for half/bfloat16, else the input dtype.
at::ScalarType expm_compute_dtype(at::ScalarType t);

// Chooses degree and squarings per matrix of A3 (B, n, n) from its 1-norm; checks finiteness.
ExpmPlan expm_plan(const at::Tensor& A3, const char* op, const char* arg);

// exp of every matrix of A3 (B, n, n). When `trace` is given, the intermediates the reverse
// sweep needs are appended to it (at most 6 + squarings matrices per matrix of the batch); the
// (scaled) input itself is not among them, so the trace never aliases A3. Matrices on the skew
// route (plan.skew) run as one sub-batch after the others; their (V, λ, P) end the trace.
at::Tensor expm_run(const at::Tensor& A3, const ExpmPlan& plan, std::vector<at::Tensor>* trace);

// Gradient with respect to A3 of <G3, exp(A3)>, from A3 and the trace of expm_run.
at::Tensor expm_reverse(const at::Tensor& G3, const at::Tensor& A3, const ExpmPlan& plan, at::TensorList trace);

// (..., n, n) in any floating dtype <-> contiguous (B, n, n) in the compute dtype.
at::Tensor to_batch(const at::Tensor& X);
at::Tensor from_batch(const at::Tensor& X3, at::IntArrayRef shape, at::ScalarType dtype);

// Whole-op kernels on (..., n, n) tensors of any floating dtype, shared by the device kernels:
//   expm, expm_backward (which recomputes the forward's trace);
//   _expm_traced: exp(A) and its trace [plan, intermediates...] for _expm_traced_backward,
//   so that forward + backward under autograd cost about three forwards, not four.
// skew_route: choose the eigendecomposition route for exactly skew matrices where its rule
// says so (expm_skew.h); only the CPU kernels pass true (on CUDA it never ran). The overloads
// without it are scaling and squaring throughout.
at::Tensor expm_forward_generic(const at::Tensor& A, bool skew_route);
at::Tensor expm_backward_generic(const at::Tensor& grad, const at::Tensor& A, bool skew_route);
std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_generic(const at::Tensor& A, bool skew_route);
at::Tensor expm_forward_generic(const at::Tensor& A);
at::Tensor expm_backward_generic(const at::Tensor& grad, const at::Tensor& A);
std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced_generic(const at::Tensor& A);
at::Tensor expm_traced_backward_generic(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace);

// C++ entries of the private operators mantra::_expm_traced and mantra::_expm_traced_backward
// (through the dispatcher, so they reach the kernel of the tensors' device).
std::tuple<at::Tensor, std::vector<at::Tensor>> expm_traced(const at::Tensor& A);
at::Tensor expm_traced_backward(const at::Tensor& grad, const at::Tensor& A, at::TensorList trace);

// The plan as the first tensor of a trace (int64 on the CPU, shape (2, B): degree, squarings;
// (3, B) with a row of 0/1 for the skew route when some matrix takes it) and back.
at::Tensor pack_plan(const ExpmPlan& plan);
ExpmPlan unpack_plan(const at::Tensor& packed, int64_t batch);

}  // namespace mantra::detail
