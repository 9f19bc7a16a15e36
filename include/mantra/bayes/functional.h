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
//   covariance "cholesky": a_raw, b_raw are the unconstrained Cholesky parameters above;
//   covariance "spd": a_raw = U (n, n) and b_raw = V (m, m) themselves, points of the SPD
//   manifold (affine-invariant metric) trained with mantra::optim::RiemannianAdam; the factors
//   the ops need are A = cholesky(U), B = cholesky(V) (row_factor / column_factor).
struct MatrixNormalParams {
  at::Tensor mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma;
  std::string covariance = "cholesky";
};

// Validates the option strings and that `p` has the tensors of the family and prior.
void check_options(const std::string& posterior, const std::string& prior, const std::string& sampling);
void check_covariance(const std::string& covariance);
void check_params(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior);
// The lower-triangular factors A (U = AAᵀ) and B (V = BBᵀ) of the MN part, from a_raw / b_raw
// as p.covariance says (cholesky_factor of the raw parameter, or the Cholesky factor of U / V,
// cast to the mean's dtype: U, V may be kept in float64 for the SPD manifold's eigh).
at::Tensor row_factor(const MatrixNormalParams& p);
at::Tensor column_factor(const MatrixNormalParams& p);

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
// Under covariance "spd", U = exp(init_log_variance/2)·I and V likewise (the same Var(W_ij)).
MatrixNormalParams initial_params(int64_t in, int64_t out, const std::string& posterior, const std::string& prior,
                                  bool bias, double init_log_variance, const at::TensorOptions& options,
                                  std::optional<at::Generator> gen = std::nullopt,
                                  const std::string& covariance = "cholesky");

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

// ---- The convolutional layer (mantra::nn::MatrixNormalConv2d) ----
// The matrix view of a kernel (C_out, C_in, k, k) is W (n × m) with n = C_in·k·k, m = C_out:
// W = kernel.reshape(C_out, n)ᵀ, so rows are input-channel taps (channel-major, then kernel row,
// kernel column: the order of im2col / torch's unfold) and columns are output channels.
// All the math of the linear layer (posteriors, priors, KL, log α, masks) applies to W unchanged.
struct ConvGeometry {
  int64_t in_channels = 1, kernel_size = 1, stride = 1, padding = 0, dilation = 1;
};
void check_geometry(const ConvGeometry& g);
// (n, m) -> (m, C_in, k, k).
at::Tensor conv_kernel(const at::Tensor& W, const ConvGeometry& g);
// The patches of X (N, C_in, H, W) as rows: (N·L, n), L = H'·W' output locations (im2col).
at::Tensor conv_patches(const at::Tensor& X, const ConvGeometry& g);
// One sampled output (N, m, H', W'). "weights": one W for the batch, conv2d(X, kernel(W)).
// "local": the local reparameterization per output location: the pre-activation o = Wᵀp of a
// patch p is N(Mᵀp, (pᵀUp)·V) (+ Σ_i p_i²σ_i² per entry for the diag part), drawn independently
// at every location, ignoring the correlations between locations (as the usual local
// reparameterization for conv does). It is sampled_forward on the patch rows, so pᵀUp = ‖Aᵀp‖²
// is the conv of X with the kernel view of A, computed by the same fused
// mantra::matrix_normal_linear op as the linear layer (im2col GEMM: no second formula).
at::Tensor conv_sampled_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::string& posterior,
                                const std::string& sampling, const ConvGeometry& g, std::optional<at::Generator> gen);
// conv2d(X, kernel(M ⊙ mask)) + bias.
at::Tensor conv_mean_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::optional<at::Tensor>& mask,
                             const ConvGeometry& g);
// The kept input channels (C_in, bool) of a mask (n, m): a channel is kept when ANY of its k·k
// taps keeps a weight; its masked taps stay in the pruned kernel as zeros (a tap cannot be cut
// out of a dense conv on its own), so input taps are removed only a whole channel at a time.
at::Tensor kept_input_channels(const at::Tensor& mask, const ConvGeometry& g);
// The pruned deterministic conv: (weight (m', C', k, k), bias (m') or undefined, kept input
// channels (C'), kept output channels (m')), from the masked mean; keep_in / keep_out (channel
// index tensors) override the mask's units.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pruned_conv(const MatrixNormalParams& p,
                                                                       const std::string& posterior,
                                                                       const std::string& prior, double threshold,
                                                                       const ConvGeometry& g,
                                                                       const std::optional<at::Tensor>& keep_in,
                                                                       const std::optional<at::Tensor>& keep_out);

// The negative ELBO of a minibatch: dataset_size · (mean data NLL of the batch) + kl_weight · KL.
at::Tensor negative_elbo(const at::Tensor& mean_nll, const at::Tensor& kl_sum, int64_t dataset_size,
                         double kl_weight = 1.0);
// Linear KL warm-up: min(1, step / warmup_steps) (1 when warmup_steps <= 0).
double kl_warmup(int64_t step, int64_t warmup_steps);

}  // namespace mantra::bayes
