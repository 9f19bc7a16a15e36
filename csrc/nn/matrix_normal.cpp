#include "mantra/nn/matrix_normal.h"

#include <torch/torch.h>

namespace mantra::nn {

namespace {
thread_local bool sample_in_eval = false;

// Registers the posterior's tensors on `module` (U, V as "u", "v" under covariance "spd").
void register_params(torch::nn::Module& module, const bayes::MatrixNormalParams& p, torch::Tensor* out[7]) {
  const bool spd = p.covariance == "spd";
  const char* names[7] = {"mean", spd ? "u" : "a_raw", spd ? "v" : "b_raw", "log_sigma2", "bias", "log_tau", "log_gamma"};
  const torch::Tensor* in[7] = {&p.mean, &p.a_raw, &p.b_raw, &p.log_sigma2, &p.bias, &p.log_tau, &p.log_gamma};
  for (int i = 0; i < 7; ++i) *out[i] = in[i]->defined() ? module.register_parameter(names[i], *in[i]) : torch::Tensor();
}

// Training (or SampleInEval): one sample; eval: the mean of K samples, or the (masked) mean.
template <typename Sample, typename Mean>
torch::Tensor forward_mode(bool training, int64_t eval_samples, Sample&& sample, Mean&& mean) {
  if (training || SampleInEval::active()) return sample();
  if (eval_samples > 0) {
    torch::Tensor out = sample();
    for (int64_t k = 1; k < eval_samples; ++k) out = out + sample();
    return out / static_cast<double>(eval_samples);
  }
  return mean();
}

std::vector<torch::Tensor> spd_of(const bayes::MatrixNormalParams& p) {
  if (p.covariance != "spd" || !p.a_raw.defined()) return {};
  return {p.a_raw, p.b_raw};
}
}  // namespace

SampleInEval::SampleInEval() : previous_(sample_in_eval) { sample_in_eval = true; }
SampleInEval::~SampleInEval() { sample_in_eval = previous_; }
bool SampleInEval::active() { return sample_in_eval; }

MatrixNormalLinearImpl::MatrixNormalLinearImpl(const MatrixNormalLinearOptions& options_) : options(options_) {
  reset();
}

void MatrixNormalLinearImpl::reset() {
  bayes::check_options(options.posterior(), options.prior(), options.sampling());
  TORCH_CHECK_VALUE(options.eval_samples() >= 0,
                    "mantra::nn::MatrixNormalLinear: argument 'eval_samples' must be >= 0, got ", options.eval_samples());
  bayes::MatrixNormalParams p = bayes::initial_params(
      options.in_features(), options.out_features(), options.posterior(), options.prior(), options.bias(),
      options.init_log_variance(), torch::TensorOptions().dtype(torch::kFloat32), std::nullopt, options.covariance());
  torch::Tensor* out[7] = {&mean, &a_raw, &b_raw, &log_sigma2, &bias, &log_tau, &log_gamma};
  register_params(*this, p, out);
}

bayes::MatrixNormalParams MatrixNormalLinearImpl::params() const {
  return {mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma, options.covariance()};
}
std::vector<torch::Tensor> MatrixNormalLinearImpl::spd_parameters() const { return spd_of(params()); }

torch::Tensor MatrixNormalLinearImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK_VALUE(input.dim() >= 1 && input.size(-1) == options.in_features(),
                    "mantra::nn::MatrixNormalLinear: argument 'input' must be (..., ", options.in_features(),
                    "), got shape ", input.sizes());
  const auto lead = input.sizes().slice(0, input.dim() - 1).vec();
  const torch::Tensor X = input.reshape({-1, options.in_features()});
  const bayes::MatrixNormalParams p = params();
  const torch::Tensor out = forward_mode(
      is_training(), options.eval_samples(),
      [&] { return bayes::sampled_forward(X, p, options.posterior(), options.sampling(), generator_); },
      [&] {
        std::optional<torch::Tensor> m;
        if (options.threshold().has_value()) m = mask(*options.threshold());
        return bayes::mean_forward(X, p, m);
      });
  auto shape = lead;
  shape.push_back(options.out_features());
  return out.reshape(shape);
}

torch::Tensor MatrixNormalLinearImpl::kl() {
  return bayes::kl(params(), options.posterior(), options.prior(), options.prior_variance());
}
torch::Tensor MatrixNormalLinearImpl::log_alpha() { return bayes::log_alpha(params(), options.posterior()); }
torch::Tensor MatrixNormalLinearImpl::marginal_variance() {
  return bayes::marginal_variance(params(), options.posterior());
}

std::pair<torch::Tensor, torch::Tensor> MatrixNormalLinearImpl::group_masks(double threshold) {
  torch::NoGradGuard ng;
  return bayes::group_masks(params(), options.posterior(), threshold);
}

torch::Tensor MatrixNormalLinearImpl::mask(double threshold) {
  return bayes::mask(params(), options.posterior(), options.prior(), threshold);
}

std::pair<torch::Tensor, torch::Tensor> MatrixNormalLinearImpl::kept_units(double threshold) {
  const torch::Tensor m = mask(threshold);
  return {m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()};
}

torch::nn::Linear MatrixNormalLinearImpl::prune(double threshold, std::optional<torch::Tensor> keep_in,
                                                std::optional<torch::Tensor> keep_out) {
  torch::NoGradGuard ng;
  auto [W, b, rows, cols] = bayes::pruned(params(), options.posterior(), options.prior(), threshold, keep_in, keep_out);
  torch::nn::Linear lin(torch::nn::LinearOptions(rows.numel(), cols.numel()).bias(b.defined()));
  lin->to(mean.scalar_type());
  lin->weight.copy_(W);
  if (b.defined()) lin->bias.copy_(b);
  return lin;
}

void MatrixNormalLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::nn::MatrixNormalLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features() << ", posterior=" << options.posterior()
         << ", prior=" << options.prior() << ", sampling=" << options.sampling() << ")";
}

MatrixNormalConv2dImpl::MatrixNormalConv2dImpl(const MatrixNormalConv2dOptions& options_) : options(options_) {
  reset();
}

bayes::ConvGeometry MatrixNormalConv2dImpl::geometry() const {
  return {options.in_channels(), options.kernel_size(), options.stride(), options.padding(), options.dilation()};
}

void MatrixNormalConv2dImpl::reset() {
  bayes::check_options(options.posterior(), options.prior(), options.sampling());
  bayes::check_geometry(geometry());
  TORCH_CHECK_VALUE(options.out_channels() > 0, "mantra::nn::MatrixNormalConv2d: argument 'out_channels' must be positive, got ",
                    options.out_channels());
  TORCH_CHECK_VALUE(options.eval_samples() >= 0,
                    "mantra::nn::MatrixNormalConv2d: argument 'eval_samples' must be >= 0, got ", options.eval_samples());
  const int64_t k = options.kernel_size();
  bayes::MatrixNormalParams p = bayes::initial_params(
      options.in_channels() * k * k, options.out_channels(), options.posterior(), options.prior(), options.bias(),
      options.init_log_variance(), torch::TensorOptions().dtype(torch::kFloat32), std::nullopt, options.covariance());
  torch::Tensor* out[7] = {&mean, &a_raw, &b_raw, &log_sigma2, &bias, &log_tau, &log_gamma};
  register_params(*this, p, out);
}

bayes::MatrixNormalParams MatrixNormalConv2dImpl::params() const {
  return {mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma, options.covariance()};
}
std::vector<torch::Tensor> MatrixNormalConv2dImpl::spd_parameters() const { return spd_of(params()); }

torch::Tensor MatrixNormalConv2dImpl::forward(const torch::Tensor& input) {
  const bayes::MatrixNormalParams p = params();
  const bayes::ConvGeometry g = geometry();
  return forward_mode(
      is_training(), options.eval_samples(),
      [&] { return bayes::conv_sampled_forward(input, p, options.posterior(), options.sampling(), g, generator_); },
      [&] {
        std::optional<torch::Tensor> m;
        if (options.threshold().has_value()) m = mask(*options.threshold());
        return bayes::conv_mean_forward(input, p, m, g);
      });
}

torch::Tensor MatrixNormalConv2dImpl::kl() {
  return bayes::kl(params(), options.posterior(), options.prior(), options.prior_variance());
}
torch::Tensor MatrixNormalConv2dImpl::log_alpha() { return bayes::log_alpha(params(), options.posterior()); }
torch::Tensor MatrixNormalConv2dImpl::marginal_variance() {
  return bayes::marginal_variance(params(), options.posterior());
}
std::pair<torch::Tensor, torch::Tensor> MatrixNormalConv2dImpl::group_masks(double threshold) {
  torch::NoGradGuard ng;
  return bayes::group_masks(params(), options.posterior(), threshold);
}
torch::Tensor MatrixNormalConv2dImpl::mask(double threshold) {
  return bayes::mask(params(), options.posterior(), options.prior(), threshold);
}
std::pair<torch::Tensor, torch::Tensor> MatrixNormalConv2dImpl::kept_units(double threshold) {
  const torch::Tensor m = mask(threshold);
  return {bayes::kept_input_channels(m, geometry()).nonzero().flatten(), m.any(0).nonzero().flatten()};
}

torch::nn::Conv2d MatrixNormalConv2dImpl::prune(double threshold, std::optional<torch::Tensor> keep_in,
                                                std::optional<torch::Tensor> keep_out) {
  torch::NoGradGuard ng;
  auto [W, b, channels, cols] =
      bayes::pruned_conv(params(), options.posterior(), options.prior(), threshold, geometry(), keep_in, keep_out);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(channels.numel(), cols.numel(), options.kernel_size())
                             .stride(options.stride())
                             .padding(options.padding())
                             .dilation(options.dilation())
                             .bias(b.defined()));
  conv->to(mean.scalar_type());
  conv->weight.copy_(W);
  if (b.defined()) conv->bias.copy_(b);
  return conv;
}

void MatrixNormalConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "mantra::nn::MatrixNormalConv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
         << ", padding=" << options.padding() << ", posterior=" << options.posterior() << ", prior=" << options.prior()
         << ", sampling=" << options.sampling() << ", covariance=" << options.covariance() << ")";
}

torch::Tensor predictive_probabilities(const std::function<torch::Tensor()>& logits, int64_t K) {
  TORCH_CHECK_VALUE(K > 0, "mantra::nn::predictive_probabilities: argument 'K' must be positive, got ", K);
  torch::NoGradGuard ng;
  SampleInEval guard;
  torch::Tensor p = torch::softmax(logits(), -1);
  for (int64_t k = 1; k < K; ++k) p = p + torch::softmax(logits(), -1);
  return p / static_cast<double>(K);
}

torch::Tensor kl_sum(torch::nn::Module& module) {
  torch::Tensor total;
  auto add = [&](torch::nn::Module& m) {
    torch::Tensor k;
    if (auto* layer = dynamic_cast<MatrixNormalLinearImpl*>(&m)) k = layer->kl();
    if (auto* layer = dynamic_cast<MatrixNormalConv2dImpl*>(&m)) k = layer->kl();
    if (k.defined()) total = total.defined() ? total + k : k;
  };
  add(module);
  for (const auto& child : module.modules(/*include_self=*/false)) add(*child);
  return total.defined() ? total : torch::zeros({});
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> split_spd_parameters(torch::nn::Module& module) {
  std::vector<torch::Tensor> spd, rest;
  auto add = [&](torch::nn::Module& m) {
    std::vector<torch::Tensor> s;
    if (auto* layer = dynamic_cast<MatrixNormalLinearImpl*>(&m)) s = layer->spd_parameters();
    if (auto* layer = dynamic_cast<MatrixNormalConv2dImpl*>(&m)) s = layer->spd_parameters();
    spd.insert(spd.end(), s.begin(), s.end());
  };
  add(module);
  for (const auto& child : module.modules(/*include_self=*/false)) add(*child);
  for (const auto& t : module.parameters()) {
    bool is_spd = false;
    for (const auto& u : spd) is_spd = is_spd || t.is_same(u);
    if (!is_spd) rest.push_back(t);
  }
  return {spd, rest};
}

}  // namespace mantra::nn
