// Matrix exponential by scaling and squaring of optimized Taylor polynomials (Bader, Blanes &
// Casas 2019), written with ATen operations so it runs on any device, plus its exact reverse
// mode: the backward is the adjoint of every product the forward did, so it costs two products
// per forward product (the Fréchet derivative L(Aᵀ, G) of the approximant actually computed).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace mantra::detail {

// Per matrix of the flattened batch: which Taylor degree and how many squarings.
struct ExpmPlan {
  std::vector<int64_t> degree_index;  // into the degree table (1, 2, 4, 8, 12, 18)
  std::vector<int64_t> squarings;
};

// Validates the argument of expm (name it `arg`), throwing with the expected and actual value.
void check_expm_argument(const at::Tensor& A, const char* op, const char* arg);

// The dtype the exponential is computed in: float32 for half/bfloat16, else the input dtype.
at::ScalarType expm_compute_dtype(at::ScalarType t);

// Chooses degree and squarings per matrix of A3 (B, n, n) from its 1-norm; checks finiteness.
ExpmPlan expm_plan(const at::Tensor& A3, const char* op, const char* arg);

// exp of every matrix of A3 (B, n, n). When `trace` is given it receives the intermediates
// the reverse sweep needs (about 8 + squarings matrices per matrix of the batch).
at::Tensor expm_run(const at::Tensor& A3, const ExpmPlan& plan, std::vector<at::Tensor>* trace);

// Gradient with respect to A3 of <G3, exp(A3)>, from the trace of expm_run.
at::Tensor expm_reverse(const at::Tensor& G3, const ExpmPlan& plan, const std::vector<at::Tensor>& trace);

// (..., n, n) in any floating dtype <-> contiguous (B, n, n) in the compute dtype.
at::Tensor to_batch(const at::Tensor& X);
at::Tensor from_batch(const at::Tensor& X3, at::IntArrayRef shape, at::ScalarType dtype);

// Whole-op helpers on (..., n, n) tensors of any floating dtype.
at::Tensor expm_forward_generic(const at::Tensor& A);
at::Tensor expm_backward_generic(const at::Tensor& grad, const at::Tensor& A);

// The plan packed into one list (for autograd's saved data) and back.
std::vector<int64_t> pack_plan(const ExpmPlan& plan);
ExpmPlan unpack_plan(const std::vector<int64_t>& packed);

}  // namespace mantra::detail
