// Matrix-normal weight posteriors (Rudnev & Kropotov, "Sparse Variational Learning with Matrix
// Normal Distributions", 2019): the sampling operators and the KL terms of the priors.
//
// THE CONVENTION (used everywhere in mantra, stated once):
//   A weight W ∈ R^{n×m} is (in × out), so a layer computes O = X·W (X: N×n).
//   W ~ MN(M, U, V) with U = A·Aᵀ (n×n) the covariance AMONG ROWS and V = B·Bᵀ (m×m) the
//   covariance AMONG COLUMNS; A, B lower triangular with positive diagonals (Cholesky factors).
//   Reparameterization: W = M + A·E·Bᵀ, E standard normal n×m. Then
//     Cov(W_ij, W_kl) = U_ik·V_jl,  i.e.  Cov(vec_r W) = U ⊗ V
//   where vec_r stacks the ROWS of W (W.reshape(-1) of a row-major tensor; torch.kron(U, V)).
//   Equivalently Cov(vec_c W) = V ⊗ U for the column-stacking vec of the textbooks (Gupta &
//   Nagar write MN_{n,m}(M, U, V) with that vec and the same U, V). The Monte Carlo tests
//   (tests/cpp/bayes, tests/python/test_bayes_ops.py) prove it.
//   Local reparameterization: a row o = Mᵀx + sqrt(xᵀUx)·B·ε, ε ~ N(0, I_m), has exactly the
//   distribution of Wᵀx (mean Mᵀx, covariance (xᵀUx)·V).
//
// Only the lower triangles of A and B are ever read; their upper triangles get zero gradient.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace mantra {

// W = M + tril(A)·E·tril(B)ᵀ: a sample of MN(M, AAᵀ, BBᵀ) from the standard normal noise E.
//   M (n, m), A (n, n), B (m, m), E (n, m); one floating dtype and device (float16/bfloat16
//   computed in float32). The CPU kernel rejects NaN in any argument and a non-positive diagonal
//   of A or B. Costs two half-GEMMs (blocked triangular products). Differentiable in all four
//   (exact gradients; those to A and B are lower triangular).
at::Tensor matrix_normal_sample(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& E);

// The local reparameterization of X·W for W ~ MN(M, AAᵀ, BBᵀ), one independent W per row of X:
//   O = X·M + s ⊙ (E·tril(B)ᵀ) (+ bias),  s_i = ‖(X·tril(A))_i‖ = sqrt(x_iᵀ U x_i).
//   X (N, n), M (n, m), A (n, n), B (m, m), E (N, m) standard normal, bias (m) or none.
//   Checks, dtypes and gradients as matrix_normal_sample (at x_i = 0 the gradient of s_i is 0).
at::Tensor matrix_normal_linear(const at::Tensor& X, const at::Tensor& M, const at::Tensor& A, const at::Tensor& B,
                                const at::Tensor& E, const std::optional<at::Tensor>& bias = std::nullopt);

namespace bayes {

// The Cholesky factor of an unconstrained square matrix: tril(raw, −1) + diag(exp(diag(raw)))
// (the diagonal is stored as its log, so training is unconstrained; the upper triangle is unused).
at::Tensor cholesky_factor(const at::Tensor& raw);

// Marginal variances Var(W_ij) = U_ii·V_jj (n, m) of MN(·, AAᵀ, BBᵀ); O(n² + m² + nm).
at::Tensor mn_variance(const at::Tensor& A, const at::Tensor& B);
// log|U ⊗ V| = m·log|U| + n·log|V| = 2m·Σ log A_ii + 2n·Σ log B_jj (positive diagonals).
at::Tensor mn_log_det(const at::Tensor& A, const at::Tensor& B);
// A lower bound of log|S + D| for S ≻ 0, D ≻ 0 of size K from log|S| and log|D| (Minkowski's
// determinant inequality |S+D|^{1/K} ≥ |S|^{1/K} + |D|^{1/K}); used for the MN+DIAG family,
// whose KL it bounds from above (the ELBO stays a lower bound).
at::Tensor log_det_sum_lower_bound(const at::Tensor& log_det_s, const at::Tensor& log_det_d, int64_t K);

// KL(q ‖ p) of a Gaussian q on the K = numel(mean) weights, from its mean, marginal variances
// `var` (shape of mean) and the log-determinant of its covariance, to the priors:
//   normal:    p = N(0, σ²·I)          ½[Σ(var + mean²)/σ² − K + K·log σ² − log|Σ|]
//   ard:       p = N(0, diag(α)⁻¹) with the optimal α_k = 1/(var_k + mean_k²) substituted:
//                                      ½[Σ log(var + mean²) − log|Σ|]
//   group_ard: p = MN(0, diag(τ)⁻¹, diag(γ)⁻¹), i.e. prior precision τ_i·γ_j of W_ij (n×m mean):
//              ½[Σ τ_iγ_j(var_ij + mean_ij²) − K − m·Σ log τ − n·Σ log γ − log|Σ|]
//              with τ = exp(log_tau) (n), γ = exp(log_gamma) (m), learnable.
at::Tensor kl_normal(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& log_det, double prior_variance);
at::Tensor kl_ard(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& log_det);
at::Tensor kl_group_ard(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& log_det,
                        const at::Tensor& log_tau, const at::Tensor& log_gamma);

// The same for the MN posterior MN(M, AAᵀ, BBᵀ) (O(n² + m² + nm), never forming U ⊗ V) and the
// DIAG posterior N(mu, diag(exp(log_sigma2))). ARD for MN: ½Σ log(M_ij² + U_iiV_jj) − ½log|U⊗V|;
// for DIAG: ½Σ log(1 + μ²/σ²).
at::Tensor kl_mn_normal(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, double prior_variance);
at::Tensor kl_mn_ard(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B);
at::Tensor kl_mn_group_ard(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& log_tau,
                           const at::Tensor& log_gamma);
at::Tensor kl_diag_normal(const at::Tensor& mu, const at::Tensor& log_sigma2, double prior_variance);
at::Tensor kl_diag_ard(const at::Tensor& mu, const at::Tensor& log_sigma2);
at::Tensor kl_diag_group_ard(const at::Tensor& mu, const at::Tensor& log_sigma2, const at::Tensor& log_tau,
                             const at::Tensor& log_gamma);

}  // namespace bayes
}  // namespace mantra
