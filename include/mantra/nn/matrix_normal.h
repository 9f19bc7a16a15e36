// mantra::nn::MatrixNormalLinear: a variational Bayesian linear layer whose weight W (in × out)
// has the posterior MN(M, AAᵀ, BBᵀ) ("mn"), N(M, diag σ²) ("diag") or their sum ("mn+diag"), under
// a "normal", "ard" or "group_ard" prior (Rudnev & Kropotov 2019). The math is the free functions
// of mantra/bayes/functional.h, which the Python module calls too; the convention is stated in
// mantra/bayes/matrix_normal.h. mantra::nn::MatrixNormalConv2d is the same for the matrix view
// (C_in·k·k) × C_out of a conv kernel (rows: input-channel taps; columns: output channels), with
// the local reparameterization per output location (see bayes::conv_sampled_forward).
//
// covariance "cholesky" (default) trains A, B through their unconstrained raw parameters
// (a_raw, b_raw); "spd" registers U and V themselves (parameters u, v), points of the SPD
// manifold with the affine-invariant metric, for mantra::optim::RiemannianAdam with
// manifolds::SPD (spd_parameters() lists them); the layer takes A = cholesky(U), B = cholesky(V).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <mantra/bayes/functional.h>
#include <mantra/bayes/matrix_normal.h>
#include <mantra/detail/crtp_arg.h>

#include <functional>
#include <optional>
#include <string>

namespace mantra::nn {

// The options MatrixNormalLinear and MatrixNormalConv2d share (the posterior of the weight's
// matrix view, its prior, sampling, covariance parametrization and eval mode). Each setter
// returns the derived options, so builder chains mix these with the layer's own fields.
template <typename Derived>
struct MatrixNormalOptions {
  MANTRA_CRTP_ARG(bool, bias) = true;
  MANTRA_CRTP_ARG(std::string, posterior) = "mn";  // mn, diag, mn+diag
  MANTRA_CRTP_ARG(std::string, prior) = "ard";     // normal, ard, group_ard
  // local: the local reparameterization, one independent output per row (Linear) or per output
  // location (Conv2d: o = Wᵀp ~ N(Mᵀp, (pᵀUp)·V), the correlations between locations ignored,
  // as the usual local reparameterization for conv does); weights: one W per batch (the exact
  // joint distribution).
  MANTRA_CRTP_ARG(std::string, sampling) = "local";
  MANTRA_CRTP_ARG(std::string, covariance) = "cholesky";  // cholesky (A, B raw), spd (U, V on the SPD manifold)
  MANTRA_CRTP_ARG(double, prior_variance) = 1.0;           // σ² of the "normal" prior
  MANTRA_CRTP_ARG(double, init_log_variance) = -10.0;      // initial log Var(W_ij)
  // Eval mode: 0 uses the mean weight, K > 0 averages K sampled outputs.
  MANTRA_CRTP_ARG(int64_t, eval_samples) = 0;
  // Eval mode with the mean: zero the weights the masks drop at this log-α threshold (none: no mask).
  MANTRA_CRTP_ARG(std::optional<double>, threshold) = std::nullopt;
};

struct MatrixNormalLinearOptions : public MatrixNormalOptions<MatrixNormalLinearOptions> {
  MatrixNormalLinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
};

class MatrixNormalLinearImpl : public torch::nn::Cloneable<MatrixNormalLinearImpl> {
 public:
  MatrixNormalLinearImpl(int64_t in_features, int64_t out_features)
      : MatrixNormalLinearImpl(MatrixNormalLinearOptions(in_features, out_features)) {}
  explicit MatrixNormalLinearImpl(const MatrixNormalLinearOptions& options);

  void reset() override;
  // input (..., in) -> (..., out). Training mode (or under SampleInEval): one sample, noise from
  // the layer's generator (set_generator) or the default one. Eval: the (masked) mean, or the
  // average of eval_samples samples.
  torch::Tensor forward(const torch::Tensor& input);
  torch::Tensor kl();
  torch::Tensor log_alpha();
  torch::Tensor marginal_variance();
  // The mask (in, out, bool) at a log-α threshold: per weight (normal, ard), or rows × columns of
  // the group masks (group_ard).
  torch::Tensor mask(double threshold);
  std::pair<torch::Tensor, torch::Tensor> group_masks(double threshold);
  // The kept input and output units (index tensors) of mask(threshold).
  std::pair<torch::Tensor, torch::Tensor> kept_units(double threshold);
  // An ordinary Linear(kept inputs, kept outputs) whose output on x[:, kept_in] equals the
  // masked mean layer's output on x at the kept outputs. Optional explicit unit sets (e.g. to
  // chain layers) override the mask's.
  torch::nn::Linear prune(double threshold, std::optional<torch::Tensor> keep_in = std::nullopt,
                          std::optional<torch::Tensor> keep_out = std::nullopt);
  void set_generator(std::optional<at::Generator> gen) { generator_ = std::move(gen); }
  bayes::MatrixNormalParams params() const;
  // U and V under covariance "spd" (for a RiemannianAdam group on manifolds::SPD), else empty.
  std::vector<torch::Tensor> spd_parameters() const;
  void pretty_print(std::ostream& stream) const override;

  MatrixNormalLinearOptions options;
  torch::Tensor mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma;

 private:
  std::optional<at::Generator> generator_;
};

TORCH_MODULE(MatrixNormalLinear);

struct MatrixNormalConv2dOptions : public MatrixNormalOptions<MatrixNormalConv2dOptions> {
  MatrixNormalConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);  // square k × k
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 0;
  TORCH_ARG(int64_t, dilation) = 1;
};

// A variational Bayesian Conv2d: the kernel's matrix view W (C_in·k·k × C_out) has the posterior
// of MatrixNormalLinear (same families, priors, KL, masks). Initialization as torch::nn::Conv2d's
// bound 1/sqrt(C_in·k·k) for the mean and bias; Var(W_ij) = exp(init_log_variance).
class MatrixNormalConv2dImpl : public torch::nn::Cloneable<MatrixNormalConv2dImpl> {
 public:
  MatrixNormalConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : MatrixNormalConv2dImpl(MatrixNormalConv2dOptions(in_channels, out_channels, kernel_size)) {}
  explicit MatrixNormalConv2dImpl(const MatrixNormalConv2dOptions& options);

  void reset() override;
  // input (N, C_in, H, W) -> (N, C_out, H', W'); training / eval as MatrixNormalLinear.
  torch::Tensor forward(const torch::Tensor& input);
  torch::Tensor kl();
  torch::Tensor log_alpha();  // (C_in·k·k, C_out)
  torch::Tensor marginal_variance();
  torch::Tensor mask(double threshold);  // (C_in·k·k, C_out, bool)
  std::pair<torch::Tensor, torch::Tensor> group_masks(double threshold);  // (taps, output channels)
  // (kept input channels, kept output channels): a channel is kept when any of its taps keeps a
  // weight (bayes::kept_input_channels).
  std::pair<torch::Tensor, torch::Tensor> kept_units(double threshold);
  // An ordinary Conv2d(kept input channels, kept output channels, k) whose output on
  // input[:, kept_in] equals the masked mean layer's output at the kept output channels.
  torch::nn::Conv2d prune(double threshold, std::optional<torch::Tensor> keep_in = std::nullopt,
                          std::optional<torch::Tensor> keep_out = std::nullopt);
  void set_generator(std::optional<at::Generator> gen) { generator_ = std::move(gen); }
  bayes::MatrixNormalParams params() const;
  bayes::ConvGeometry geometry() const;
  std::vector<torch::Tensor> spd_parameters() const;
  void pretty_print(std::ostream& stream) const override;

  MatrixNormalConv2dOptions options;
  // The matrix view (C_in·k·k, C_out); a_raw / b_raw hold U / V under covariance "spd".
  torch::Tensor mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma;

 private:
  std::optional<at::Generator> generator_;
};

TORCH_MODULE(MatrixNormalConv2d);

// While alive, MatrixNormal layers sample in eval mode too (for Bayesian model averaging).
class SampleInEval {
 public:
  SampleInEval();
  ~SampleInEval();
  SampleInEval(const SampleInEval&) = delete;
  SampleInEval& operator=(const SampleInEval&) = delete;
  static bool active();

 private:
  bool previous_;
};

// Bayesian model averaging: the mean of softmax(logits()) over K sampled forwards (no grad).
torch::Tensor predictive_probabilities(const std::function<torch::Tensor()>& logits, int64_t K);

// Σ kl() over the MatrixNormal layers (Linear and Conv2d) of `module` (itself included).
torch::Tensor kl_sum(torch::nn::Module& module);
// The U, V parameters of the layers of `module` with covariance "spd" (the SPD group of a
// RiemannianAdam), and all its other parameters (the Euclidean group).
std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> split_spd_parameters(torch::nn::Module& module);

}  // namespace mantra::nn
