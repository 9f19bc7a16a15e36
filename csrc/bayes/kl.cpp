// KL terms of the matrix-normal and diagonal posteriors (include/mantra/bayes/matrix_normal.h).
#include "mantra/bayes/matrix_normal.h"

#include <ATen/ATen.h>

#include <cmath>

namespace mantra::bayes {
namespace {
void check_var(const at::Tensor& mean, const at::Tensor& var, const char* fn) {
  TORCH_CHECK_VALUE(mean.defined() && var.defined(), fn, ": arguments 'mean' and 'var' must be defined");
  TORCH_CHECK_VALUE(mean.sizes() == var.sizes(), fn, ": argument 'var' must have the shape of 'mean' ", mean.sizes(),
                    ", got ", var.sizes());
}
void check_square(const at::Tensor& L, const char* fn, const char* arg) {
  TORCH_CHECK_VALUE(L.dim() == 2 && L.size(0) == L.size(1), fn, ": argument '", arg,
                    "' must be a square lower-triangular factor, got shape ", L.sizes());
}
}  // namespace

at::Tensor cholesky_factor(const at::Tensor& raw) {
  check_square(raw, "mantra::bayes::cholesky_factor", "raw");
  return raw.tril(-1) + at::diag_embed(raw.diagonal().exp());
}

at::Tensor mn_variance(const at::Tensor& A, const at::Tensor& B) {
  check_square(A, "mantra::bayes::mn_variance", "A");
  check_square(B, "mantra::bayes::mn_variance", "B");
  const at::Tensor u = A.tril().square().sum(1), v = B.tril().square().sum(1);  // diag(U), diag(V)
  return at::outer(u, v);
}

at::Tensor mn_log_det(const at::Tensor& A, const at::Tensor& B) {
  check_square(A, "mantra::bayes::mn_log_det", "A");
  check_square(B, "mantra::bayes::mn_log_det", "B");
  const int64_t n = A.size(0), m = B.size(0);
  return 2.0 * static_cast<double>(m) * A.diagonal().log().sum() + 2.0 * static_cast<double>(n) * B.diagonal().log().sum();
}

at::Tensor log_det_sum_lower_bound(const at::Tensor& log_det_s, const at::Tensor& log_det_d, int64_t K) {
  TORCH_CHECK_VALUE(K > 0, "mantra::bayes::log_det_sum_lower_bound: argument 'K' must be positive, got ", K);
  const double k = static_cast<double>(K);
  return k * at::logaddexp(log_det_s / k, log_det_d / k);
}

at::Tensor kl_normal(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& log_det, double prior_variance) {
  check_var(mean, var, "mantra::bayes::kl_normal");
  TORCH_CHECK_VALUE(prior_variance > 0, "mantra::bayes::kl_normal: argument 'prior_variance' must be positive, got ",
                    prior_variance);
  const double K = static_cast<double>(mean.numel());
  return 0.5 * ((var + mean.square()).sum() / prior_variance - K + K * std::log(prior_variance) - log_det);
}

at::Tensor kl_ard(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& log_det) {
  check_var(mean, var, "mantra::bayes::kl_ard");
  return 0.5 * ((var + mean.square()).log().sum() - log_det);
}

at::Tensor kl_group_ard(const at::Tensor& mean, const at::Tensor& var, const at::Tensor& log_det,
                        const at::Tensor& log_tau, const at::Tensor& log_gamma) {
  const char* fn = "mantra::bayes::kl_group_ard";
  check_var(mean, var, fn);
  TORCH_CHECK_VALUE(mean.dim() == 2, fn, ": argument 'mean' must be (n, m), got shape ", mean.sizes());
  const int64_t n = mean.size(0), m = mean.size(1);
  TORCH_CHECK_VALUE(log_tau.dim() == 1 && log_tau.size(0) == n, fn, ": argument 'log_tau' must have shape (", n,
                    ",) (one per row of the weight), got ", log_tau.sizes());
  TORCH_CHECK_VALUE(log_gamma.dim() == 1 && log_gamma.size(0) == m, fn, ": argument 'log_gamma' must have shape (",
                    m, ",) (one per column of the weight), got ", log_gamma.sizes());
  // Σ_ij τ_i γ_j S_ij = τᵀ S γ.
  const at::Tensor quad = at::dot(log_tau.exp(), at::mv(var + mean.square(), log_gamma.exp()));
  return 0.5 * (quad - static_cast<double>(n * m) - static_cast<double>(m) * log_tau.sum() -
                static_cast<double>(n) * log_gamma.sum() - log_det);
}

at::Tensor kl_mn_normal(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, double prior_variance) {
  return kl_normal(M, mn_variance(A, B), mn_log_det(A, B), prior_variance);
}
at::Tensor kl_mn_ard(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B) {
  return kl_ard(M, mn_variance(A, B), mn_log_det(A, B));
}
at::Tensor kl_mn_group_ard(const at::Tensor& M, const at::Tensor& A, const at::Tensor& B, const at::Tensor& log_tau,
                           const at::Tensor& log_gamma) {
  return kl_group_ard(M, mn_variance(A, B), mn_log_det(A, B), log_tau, log_gamma);
}
at::Tensor kl_diag_normal(const at::Tensor& mu, const at::Tensor& log_sigma2, double prior_variance) {
  return kl_normal(mu, log_sigma2.exp(), log_sigma2.sum(), prior_variance);
}
at::Tensor kl_diag_ard(const at::Tensor& mu, const at::Tensor& log_sigma2) {
  return kl_ard(mu, log_sigma2.exp(), log_sigma2.sum());
}
at::Tensor kl_diag_group_ard(const at::Tensor& mu, const at::Tensor& log_sigma2, const at::Tensor& log_tau,
                             const at::Tensor& log_gamma) {
  return kl_group_ard(mu, log_sigma2.exp(), log_sigma2.sum(), log_tau, log_gamma);
}

}  // namespace mantra::bayes
