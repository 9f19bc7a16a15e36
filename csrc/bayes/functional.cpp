#include "mantra/bayes/functional.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "mantra/bayes/matrix_normal.h"

namespace mantra::bayes {
namespace {
bool has_mn(const std::string& posterior) { return posterior == "mn" || posterior == "mn+diag"; }
bool has_diag(const std::string& posterior) { return posterior == "diag" || posterior == "mn+diag"; }

at::Tensor noise(at::IntArrayRef sizes, const at::Tensor& like, const std::optional<at::Generator>& gen) {
  return at::randn(sizes, gen, like.options());
}
std::optional<at::Tensor> opt(const at::Tensor& t) { return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt; }
}  // namespace

void check_options(const std::string& posterior, const std::string& prior, const std::string& sampling) {
  TORCH_CHECK_VALUE(posterior == "mn" || posterior == "diag" || posterior == "mn+diag",
                    "mantra::bayes: argument 'posterior' must be mn, diag or mn+diag, got '", posterior, "'");
  TORCH_CHECK_VALUE(prior == "normal" || prior == "ard" || prior == "group_ard",
                    "mantra::bayes: argument 'prior' must be normal, ard or group_ard, got '", prior, "'");
  TORCH_CHECK_VALUE(sampling == "local" || sampling == "weights",
                    "mantra::bayes: argument 'sampling' must be local or weights, got '", sampling, "'");
}

void check_covariance(const std::string& covariance) {
  TORCH_CHECK_VALUE(covariance == "cholesky" || covariance == "spd",
                    "mantra::bayes: argument 'covariance' must be cholesky or spd, got '", covariance, "'");
}

at::Tensor row_factor(const MatrixNormalParams& p) {
  check_covariance(p.covariance);
  // (U may be kept in a wider dtype than the mean, e.g. float64 for the SPD retraction's eigh.)
  return p.covariance == "spd" ? at::linalg_cholesky(p.a_raw).to(p.mean.scalar_type()) : cholesky_factor(p.a_raw);
}
at::Tensor column_factor(const MatrixNormalParams& p) {
  check_covariance(p.covariance);
  return p.covariance == "spd" ? at::linalg_cholesky(p.b_raw).to(p.mean.scalar_type()) : cholesky_factor(p.b_raw);
}

void check_params(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior) {
  const char* fn = "mantra::bayes";
  check_covariance(p.covariance);
  TORCH_CHECK_VALUE(p.mean.defined() && p.mean.dim() == 2, fn, ": parameter 'mean' must be (in, out)");
  const int64_t n = p.mean.size(0), m = p.mean.size(1);
  if (has_mn(posterior)) {
    TORCH_CHECK_VALUE(p.a_raw.defined() && p.a_raw.sizes() == at::IntArrayRef({n, n}), fn, ": posterior '", posterior,
                      "' needs parameter 'a_raw' of shape (", n, ", ", n, ")");
    TORCH_CHECK_VALUE(p.b_raw.defined() && p.b_raw.sizes() == at::IntArrayRef({m, m}), fn, ": posterior '", posterior,
                      "' needs parameter 'b_raw' of shape (", m, ", ", m, ")");
  }
  if (has_diag(posterior))
    TORCH_CHECK_VALUE(p.log_sigma2.defined() && p.log_sigma2.sizes() == p.mean.sizes(), fn, ": posterior '",
                      posterior, "' needs parameter 'log_sigma2' of shape (", n, ", ", m, ")");
  if (prior == "group_ard")
    TORCH_CHECK_VALUE(p.log_tau.defined() && p.log_gamma.defined(), fn,
                      ": prior 'group_ard' needs parameters 'log_tau' and 'log_gamma'");
}

namespace {
// One weight sample W (n, m) of the family.
at::Tensor sample_weight(const MatrixNormalParams& p, const std::string& posterior,
                         const std::optional<at::Generator>& gen) {
  const int64_t n = p.mean.size(0), m = p.mean.size(1);
  at::Tensor W = has_mn(posterior)
                     ? matrix_normal_sample(p.mean, row_factor(p), column_factor(p), noise({n, m}, p.mean, gen))
                     : p.mean;
  if (has_diag(posterior)) W = W + (0.5 * p.log_sigma2).exp() * noise({n, m}, p.mean, gen);
  return W;
}
}  // namespace

at::Tensor sampled_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::string& posterior,
                           const std::string& sampling, std::optional<at::Generator> gen) {
  check_options(posterior, "normal", sampling);
  check_params(p, posterior, "normal");
  TORCH_CHECK_VALUE(X.dim() == 2 && X.size(1) == p.mean.size(0), "mantra::bayes::sampled_forward: argument 'X' must be (N, ",
                    p.mean.size(0), "), got shape ", X.sizes());
  const int64_t N = X.size(0), m = p.mean.size(1);
  at::Tensor out;
  if (sampling == "weights") {
    const at::Tensor W = sample_weight(p, posterior, gen);
    out = p.bias.defined() ? at::addmm(p.bias, X, W) : at::mm(X, W);
  } else {
    if (has_mn(posterior)) {
      out = matrix_normal_linear(X, p.mean, row_factor(p), column_factor(p), noise({N, m}, p.mean, gen), opt(p.bias));
    } else {
      out = p.bias.defined() ? at::addmm(p.bias, X, p.mean) : at::mm(X, p.mean);
    }
    // Diagonal part: each output is Gaussian with variance Σ_i x_i² σ_ij², independent of the MN part.
    if (has_diag(posterior))
      // (clamped: the square root has no derivative at an all-zero input row)
      out = out + at::mm(X.square(), p.log_sigma2.exp()).clamp_min(1e-30).sqrt() * noise({N, m}, p.mean, gen);
  }
  return out;
}

at::Tensor mean_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::optional<at::Tensor>& mask) {
  const at::Tensor W = mask.has_value() ? p.mean * *mask : p.mean;
  return p.bias.defined() ? at::addmm(p.bias, X, W) : at::mm(X, W);
}

at::Tensor marginal_variance(const MatrixNormalParams& p, const std::string& posterior) {
  check_options(posterior, "normal", "local");
  check_params(p, posterior, "normal");
  at::Tensor var;
  if (has_mn(posterior)) var = mn_variance(row_factor(p), column_factor(p));
  if (has_diag(posterior)) var = var.defined() ? var + p.log_sigma2.exp() : p.log_sigma2.exp();
  return var;
}

at::Tensor kl(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior,
              double prior_variance) {
  check_params(p, posterior, prior);
  const at::Tensor var = marginal_variance(p, posterior);
  at::Tensor log_det;
  if (posterior == "mn") {
    log_det = mn_log_det(row_factor(p), column_factor(p));
  } else if (posterior == "diag") {
    log_det = p.log_sigma2.sum();
  } else {
    log_det = log_det_sum_lower_bound(mn_log_det(row_factor(p), column_factor(p)),
                                      p.log_sigma2.sum(), p.mean.numel());
  }
  if (prior == "normal") return kl_normal(p.mean, var, log_det, prior_variance);
  if (prior == "ard") return kl_ard(p.mean, var, log_det);
  return kl_group_ard(p.mean, var, log_det, p.log_tau, p.log_gamma);
}

at::Tensor log_alpha(const MatrixNormalParams& p, const std::string& posterior) {
  return marginal_variance(p, posterior).log() - p.mean.square().clamp_min(1e-30).log();
}

at::Tensor weight_mask(const MatrixNormalParams& p, const std::string& posterior, double threshold) {
  return log_alpha(p, posterior) < threshold;
}

std::pair<at::Tensor, at::Tensor> group_masks(const MatrixNormalParams& p, const std::string& posterior,
                                              double threshold) {
  const at::Tensor var = marginal_variance(p, posterior), m2 = p.mean.square();
  const at::Tensor rows = var.sum(1).log() - m2.sum(1).clamp_min(1e-30).log();
  const at::Tensor cols = var.sum(0).log() - m2.sum(0).clamp_min(1e-30).log();
  return {rows < threshold, cols < threshold};
}

at::Tensor mask(const MatrixNormalParams& p, const std::string& posterior, const std::string& prior, double threshold) {
  at::NoGradGuard ng;
  if (prior == "group_ard") {
    auto [rows, cols] = group_masks(p, posterior, threshold);
    return at::outer(rows, cols);
  }
  return weight_mask(p, posterior, threshold);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pruned(const MatrixNormalParams& p,
                                                                  const std::string& posterior,
                                                                  const std::string& prior, double threshold,
                                                                  const std::optional<at::Tensor>& keep_in,
                                                                  const std::optional<at::Tensor>& keep_out) {
  at::NoGradGuard ng;
  const at::Tensor m = mask(p, posterior, prior, threshold);
  const at::Tensor rows = keep_in.has_value() ? *keep_in : m.any(1).nonzero().flatten();
  const at::Tensor cols = keep_out.has_value() ? *keep_out : m.any(0).nonzero().flatten();
  at::Tensor W = (p.mean * m).index_select(0, rows).index_select(1, cols).t().contiguous();
  at::Tensor b = p.bias.defined() ? p.bias.index_select(0, cols) : at::Tensor();
  return {W, b, rows, cols};
}

MatrixNormalParams initial_params(int64_t in, int64_t out, const std::string& posterior, const std::string& prior,
                                  bool bias, double init_log_variance, const at::TensorOptions& options,
                                  std::optional<at::Generator> gen, const std::string& covariance) {
  check_options(posterior, prior, "local");
  check_covariance(covariance);
  TORCH_CHECK_VALUE(in > 0 && out > 0, "mantra::bayes::initial_params: arguments 'in' and 'out' must be positive, got ",
                    in, " and ", out);
  MatrixNormalParams p;
  p.covariance = covariance;
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  p.mean = at::empty({in, out}, options).uniform_(-bound, bound, gen);
  if (bias) p.bias = at::empty({out}, options).uniform_(-bound, bound, gen);
  // Var(W_ij) = U_ii·V_jj = exp(init_log_variance), split evenly between A and B.
  if (has_mn(posterior) && covariance == "spd") {
    p.a_raw = at::eye(in, options) * std::exp(0.5 * init_log_variance);
    p.b_raw = at::eye(out, options) * std::exp(0.5 * init_log_variance);
  } else if (has_mn(posterior)) {
    p.a_raw = at::diag_embed(at::full({in}, 0.25 * init_log_variance, options));
    p.b_raw = at::diag_embed(at::full({out}, 0.25 * init_log_variance, options));
  }
  if (has_diag(posterior)) p.log_sigma2 = at::full({in, out}, init_log_variance, options);
  // Prior precision τ_i·γ_j = in at the start: about the inverse variance of the initial mean.
  if (prior == "group_ard") {
    p.log_tau = at::full({in}, 0.5 * std::log(static_cast<double>(in)), options);
    p.log_gamma = at::full({out}, 0.5 * std::log(static_cast<double>(in)), options);
  }
  return p;
}

void check_geometry(const ConvGeometry& g) {
  TORCH_CHECK_VALUE(g.in_channels > 0 && g.kernel_size > 0 && g.stride > 0 && g.dilation > 0 && g.padding >= 0,
                    "mantra::bayes: the conv geometry must have positive 'in_channels', 'kernel_size', 'stride', "
                    "'dilation' and 'padding' >= 0, got in_channels=", g.in_channels, ", kernel_size=", g.kernel_size,
                    ", stride=", g.stride, ", padding=", g.padding, ", dilation=", g.dilation);
}

at::Tensor conv_kernel(const at::Tensor& W, const ConvGeometry& g) {
  check_geometry(g);
  const int64_t k = g.kernel_size;
  TORCH_CHECK_VALUE(W.dim() == 2 && W.size(0) == g.in_channels * k * k, "mantra::bayes::conv_kernel: argument 'W' must be (",
                    g.in_channels * k * k, ", out_channels) (in_channels·k·k rows), got shape ", W.sizes());
  return W.t().reshape({W.size(1), g.in_channels, k, k});
}

namespace {
void check_conv_input(const at::Tensor& X, const ConvGeometry& g, const char* fn) {
  check_geometry(g);
  TORCH_CHECK_VALUE(X.dim() == 4 && X.size(1) == g.in_channels, fn, ": argument 'input' must be (N, ", g.in_channels,
                    ", H, W), got shape ", X.sizes());
  const int64_t span = g.dilation * (g.kernel_size - 1) + 1;
  TORCH_CHECK_VALUE(X.size(2) + 2 * g.padding >= span && X.size(3) + 2 * g.padding >= span, fn,
                    ": argument 'input' of spatial size ", X.size(2), "x", X.size(3), " (padding ", g.padding,
                    ") is smaller than the kernel's span ", span);
}
int64_t out_size(int64_t size, const ConvGeometry& g) {
  return (size + 2 * g.padding - g.dilation * (g.kernel_size - 1) - 1) / g.stride + 1;
}
}  // namespace

at::Tensor conv_patches(const at::Tensor& X, const ConvGeometry& g) {
  check_conv_input(X, g, "mantra::bayes::conv_patches");
  const int64_t k = g.kernel_size;
  const at::Tensor cols = at::im2col(X, {k, k}, {g.dilation, g.dilation}, {g.padding, g.padding}, {g.stride, g.stride});
  return cols.transpose(1, 2).reshape({-1, cols.size(1)});  // (N, n, L) -> (N·L, n)
}

at::Tensor conv_sampled_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::string& posterior,
                                const std::string& sampling, const ConvGeometry& g, std::optional<at::Generator> gen) {
  check_options(posterior, "normal", sampling);
  check_params(p, posterior, "normal");
  check_conv_input(X, g, "mantra::bayes::conv_sampled_forward");
  TORCH_CHECK_VALUE(p.mean.size(0) == g.in_channels * g.kernel_size * g.kernel_size,
                    "mantra::bayes::conv_sampled_forward: parameter 'mean' must have in_channels·k·k = ",
                    g.in_channels * g.kernel_size * g.kernel_size, " rows, got ", p.mean.size(0));
  const int64_t N = X.size(0), m = p.mean.size(1), H = out_size(X.size(2), g), Wd = out_size(X.size(3), g);
  if (sampling == "weights")
    return at::conv2d(X, conv_kernel(sample_weight(p, posterior, gen), g), opt(p.bias), {g.stride, g.stride},
                      {g.padding, g.padding}, {g.dilation, g.dilation});
  const at::Tensor rows = sampled_forward(conv_patches(X, g), p, posterior, "local", gen);  // (N·L, m)
  return rows.reshape({N, H, Wd, m}).permute({0, 3, 1, 2}).contiguous();
}

at::Tensor conv_mean_forward(const at::Tensor& X, const MatrixNormalParams& p, const std::optional<at::Tensor>& mask,
                             const ConvGeometry& g) {
  check_conv_input(X, g, "mantra::bayes::conv_mean_forward");
  const at::Tensor W = mask.has_value() ? p.mean * *mask : p.mean;
  return at::conv2d(X, conv_kernel(W, g), opt(p.bias), {g.stride, g.stride}, {g.padding, g.padding},
                    {g.dilation, g.dilation});
}

at::Tensor kept_input_channels(const at::Tensor& mask, const ConvGeometry& g) {
  check_geometry(g);
  const int64_t kk = g.kernel_size * g.kernel_size;
  TORCH_CHECK_VALUE(mask.dim() == 2 && mask.size(0) == g.in_channels * kk,
                    "mantra::bayes::kept_input_channels: argument 'mask' must have ", g.in_channels * kk,
                    " rows, got shape ", mask.sizes());
  return mask.reshape({g.in_channels, kk * mask.size(1)}).any(1);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pruned_conv(const MatrixNormalParams& p,
                                                                       const std::string& posterior,
                                                                       const std::string& prior, double threshold,
                                                                       const ConvGeometry& g,
                                                                       const std::optional<at::Tensor>& keep_in,
                                                                       const std::optional<at::Tensor>& keep_out) {
  at::NoGradGuard ng;
  const at::Tensor m = mask(p, posterior, prior, threshold);
  const at::Tensor channels = keep_in.has_value() ? *keep_in : kept_input_channels(m, g).nonzero().flatten();
  const at::Tensor cols = keep_out.has_value() ? *keep_out : m.any(0).nonzero().flatten();
  const int64_t kk = g.kernel_size * g.kernel_size;
  // Every tap of a kept channel: rows c·k² + t.
  const at::Tensor taps = (channels.unsqueeze(1) * kk + at::arange(kk, channels.options()).unsqueeze(0)).flatten();
  auto [W, b, rows, kept_cols] = pruned(p, posterior, prior, threshold, taps, cols);  // W (m', C'·k²)
  return {W.reshape({cols.numel(), channels.numel(), g.kernel_size, g.kernel_size}), b, channels, kept_cols};
}

at::Tensor negative_elbo(const at::Tensor& mean_nll, const at::Tensor& kl_sum, int64_t dataset_size,
                         double kl_weight) {
  TORCH_CHECK_VALUE(dataset_size > 0, "mantra::bayes::negative_elbo: argument 'dataset_size' must be positive, got ",
                    dataset_size);
  return static_cast<double>(dataset_size) * mean_nll + kl_weight * kl_sum;
}

double kl_warmup(int64_t step, int64_t warmup_steps) {
  if (warmup_steps <= 0) return 1.0;
  return std::min(1.0, static_cast<double>(step) / static_cast<double>(warmup_steps));
}

}  // namespace mantra::bayes
