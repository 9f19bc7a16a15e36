// The Bayesian matrix-normal layer as free functions of its parameters: both the C++ module
// (mantra::nn::MatrixNormalLinear) and the Python module (mantra.nn.MatrixNormalLinear) call
// exactly these. The convention (W in × out, U among rows, V among columns, Cov(vec_r W) = U⊗V)
// is in mantra/bayes/matrix_normal.h.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace mantra::bayes {

// The posterior's parameters; a tensor is undefined where the family or prior has none.
//   mn:       mean M (n, m), a_raw (n, n), b_raw (m, m): A = cholesky_factor(a_raw) etc.;
//   diag:     mean M, log_sigma2 (n, m);
//   mn+diag:  all of them: W = M + A·E·Bᵀ + σ ⊙ E₂ (two independent noises);
//   bias (m) (deterministic, optional); log_tau (n), log_gamma (m) for the group-ARD prior.
struct MatrixNormalParams {
  at::Tensor mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma;
};

// Validates the option strings and that `p` has the tensors of the family and prior.
void check_options(const std::string& posterior, const std::string& prior, const std::string& sampling);
void check_params(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior);

// One sampled output for X (N, n): "local" draws an independent weight per row (local
// reparameterization, mantra::matrix_normal_linear), "weights" one W for the batch
// (mantra::matrix_normal_sample). Noise is drawn from `gen` (the default CPU/CUDA generator
// when none), so results are deterministic given a generator.
at::Tensor sampled_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::string& posterior,
                           const std::string& sampling, std::optional<at::Generator> gen);
// X·M' + bias where M' is the mean, masked (entries zeroed) where a mask is given (n, m, bool).
at::Tensor mean_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::optional<at::Tensor>& mask);

// Marginal variances Var(W_ij) (n, m) of the family.
at::Tensor marginal_variance(const MatrixNormalParams& p, const std::string& posterior);
// The layer's KL term to its prior ("normal" with `prior_variance`, "ard", "group_ard"); for
// mn+diag the log-determinant is Minkowski's lower bound, so the KL is an upper bound.
at::Tensor kl(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior,
              double prior_variance);
// log α_ij = log Var(W_ij) − log M_ij² (sparse variational dropout's α = σ²/μ²).
at::Tensor log_alpha(const MatrixNormalParams& p, const std::string& posterior);
// Per-weight mask (n, m, bool): kept where log α < threshold.
at::Tensor weight_mask(const MatrixNormalParams& p, const std::string& posterior, double threshold);
// Group masks (rows (n), columns (m), bool): row i is kept where its group log α,
// log Σ_j Var(W_ij) − log Σ_j M_ij², is below `threshold` (columns likewise). Under the group-ARD
// prior, a row whose τ_i grows large is driven to mean 0 and prior variance, so its group log α
// grows: these are the rows "where τ is large", measured scale-free.
std::pair<at::Tensor, at::Tensor> group_masks(const MatrixNormalParams& p, const std::string& posterior,
                                              double threshold);

// The initial parameters (the paper's practice: small initial variances): mean and bias
// U(−1/√in, 1/√in) as torch.nn.Linear; Var(W_ij) = exp(init_log_variance) (A, B diagonal with
// log-diagonals init_log_variance/4 each, log σ² = init_log_variance); log τ = log γ = ½·log(in).
MatrixNormalParams initial_params(int64_t in, int64_t out, const std::string& posterior, const std::string& prior,
                                  bool bias, double init_log_variance, const at::TensorOptions& options,
                                  std::optional<at::Generator> gen = std::nullopt);

// The layer's mask (n, m, bool) at a log-α threshold: per weight (priors normal, ard), or the
// rows × columns of group_masks (group_ard).
at::Tensor mask(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior, double threshold);
// The pruned deterministic layer: (weight (out', in'), bias (out') or undefined, kept rows (in'),
// kept columns (out')) from the masked mean, keeping the units with any kept weight, unless
// keep_in / keep_out give them (index tensors, e.g. to chain layers).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pruned(const MatrixNormalParams& p,
                                                                  const std::string& posterior,
                                                                  const std::string& prior, double threshold,
                                                                  const std::optional<at::Tensor>& keep_in,
                                                                  const std::optional<at::Tensor>& keep_out);

// The negative ELBO of a minibatch: dataset_size · (mean data NLL of the batch) + kl_weight · KL.
at::Tensor negative_elbo(const at::Tensor& mean_nll, const at::Tensor& kl_sum, int64_t dataset_size,
                         double kl_weight = 1.0);
// Linear KL warm-up: min(1, step / warmup_steps) (1 when warmup_steps <= 0).
double kl_warmup(int64_t step, int64_t warmup_steps);

}  // namespace mantra::bayes
