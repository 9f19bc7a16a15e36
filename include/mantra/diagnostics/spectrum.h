// Isometry diagnostics (Sokół & Park, "Isometry: geometry of critical initializations and
// training"): the largest singular value s_max of a network's input–output Jacobian and the
// largest eigenvalue λ_max of its Fisher information (Gauss–Newton form), by power iteration on
// Jacobian-vector / vector-Jacobian products, never forming J or G.
//
// A model is a callable x -> y (any torch::nn module's forward wrapped in a lambda, or a Python
// torch.nn.Module through the bindings) and, for the Fisher, the list of tensors it is
// differentiated in. Jacobian-vector products use the double-backward trick: with a dummy
// cotangent u (requires grad), g(u) = Jᵀu is linear in u and ∂⟨g, v⟩/∂u = Jv, so only reverse
// mode is needed (and the model's ops must be twice differentiable along x, as tanh/ReLU/linear
// layers are).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mantra::diagnostics {

using Function = std::function<torch::Tensor(const torch::Tensor&)>;

struct PowerIterationOptions {
  // Stop when every estimate's residual ‖Av − λv‖/λ is below `tolerance` (by Bauer–Fike an
  // eigenvalue of the symmetric A lies within residual·λ of λ), or after `max_iterations`.
  int64_t max_iterations = 500;
  double tolerance = 1e-6;
  // The start vector is N(0, I) drawn from a generator seeded with `seed` (deterministic).
  uint64_t seed = 0;
};

// ---------------------------------------------------------------- input–output Jacobian
struct JacobianSpectrumOptions : PowerIterationOptions {
  // Rademacher probes of the Hutchinson estimate of ‖J‖²_F (the mean squared singular value χ)
  // when the explicit Jacobian is not formed (0: no estimate, chi is NaN).
  int64_t chi_probes = 16;
  // Also form each row's Jacobian explicitly (jacobian() below) and return its full singular
  // spectrum and exact χ.
  bool full_spectrum = false;
};

// x is a batch (B, n) and f must act on rows independently (a feed-forward stack without batch
// coupling), so J is block diagonal with one m×n block J_b = ∂f(x)_b/∂x_b per row b; every
// result is per row.
struct JacobianSpectrum {
  torch::Tensor s_max;            // (B,) largest singular value of each J_b (power iteration on J_bᵀJ_b)
  torch::Tensor chi;              // (B,) mean squared singular value ‖J_b‖²_F / min(m, n)
  torch::Tensor chi_stderr;       // (B,) standard error of the Hutchinson χ (0 when exact)
  torch::Tensor singular_values;  // (B, min(m, n)) descending; defined with full_spectrum
  int64_t iterations = 0;
  double residual = 0;            // the largest row residual at the last iteration
  bool converged = false;
};

JacobianSpectrum jacobian_spectrum(const Function& f, const torch::Tensor& x, const JacobianSpectrumOptions& options = {});

// Per-row Jacobians (B, m, n) of a row-wise f at x (B, n) by batched VJPs: the rows of x are
// repeated and each copy gets one unit cotangent, so one backward pass over at most 1024 rows
// gives up to 1024/B output rows of every J_b (m/⌊1024/B⌋ passes in all).
torch::Tensor jacobian(const Function& f, const torch::Tensor& x);

// ---------------------------------------------------------------- Fisher information
// G = (1/N) Σ_i J_iᵀ H_i J_i with J_i = ∂z_i/∂θ the Jacobian of the model's output row z_i
// (data row i) in the parameters, and H_i the Hessian of the loss in z_i: the identity for
// "mse" (the loss ½‖z − t‖²) and diag(p) − ppᵀ, p = softmax(z_i), for "cross_entropy". The
// Gauss–Newton form needs no targets. Parameters are flattened and concatenated in order.
struct FisherEigen {
  double lambda_max = 0;
  std::vector<torch::Tensor> vector;  // the eigenvector, shaped like the parameters (unit norm)
  int64_t iterations = 0;
  double residual = 0;
  bool converged = false;
};

// G·v for v shaped like `parameters`.
std::vector<torch::Tensor> fisher_vector_product(const Function& model, const std::vector<torch::Tensor>& parameters,
                                                 const std::string& loss, const torch::Tensor& data,
                                                 const std::vector<torch::Tensor>& v);

FisherEigen fisher_max_eigenvalue(const Function& model, const std::vector<torch::Tensor>& parameters,
                                  const std::string& loss, const torch::Tensor& data,
                                  const PowerIterationOptions& options = {});

// The dense G (P×P, P = total parameter count) by P Fisher-vector products: tiny models only.
torch::Tensor fisher_matrix(const Function& model, const std::vector<torch::Tensor>& parameters,
                            const std::string& loss, const torch::Tensor& data);

// Block bounds of §3.1 with one block per entry of `blocks` (e.g. one layer's weight and bias):
// λ_l = λ_max(G_ll) by power iteration restricted to the block. Since G ⪰ 0, G = BᵀB with
// G_lk = B_lᵀB_k and ‖G_lk‖ ≤ √(λ_l λ_k), so block Gershgorin (Feingold–Varga) gives
//   max_l λ_l ≤ λ_max(G) ≤ max_l Σ_k ‖G_lk‖ ≤ √(max_l λ_l) · Σ_k √λ_k,
// and Cauchy–Schwarz gives λ_max(G) ≤ Σ_l λ_l; `upper` is the smaller of the two.
struct FisherBlockBound {
  std::vector<double> block_lambda_max;  // λ_l, one per block
  std::vector<int64_t> block_iterations;
  double lower = 0;       // max_l λ_l
  double gershgorin = 0;  // √(max_l λ_l) · Σ_k √λ_k
  double sum = 0;         // Σ_l λ_l
  double upper = 0;       // min(gershgorin, sum)
};

FisherBlockBound fisher_block_bound(const Function& model, const std::vector<std::vector<torch::Tensor>>& blocks,
                                    const std::string& loss, const torch::Tensor& data,
                                    const PowerIterationOptions& options = {});

}  // namespace mantra::diagnostics
