#include "mantra/nn/matrix_normal.h"

#include <torch/torch.h>

namespace mantra::nn {

namespace {
thread_local bool sample_in_eval = false;
}

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
  bayes::MatrixNormalParams p =
      bayes::initial_params(options.in_features(), options.out_features(), options.posterior(), options.prior(),
                            options.bias(), options.init_log_variance(), torch::TensorOptions().dtype(torch::kFloat32));
  auto reg = [&](const char* name, const torch::Tensor& t) {
    return t.defined() ? register_parameter(name, t) : torch::Tensor();
  };
  mean = reg("mean", p.mean);
  a_raw = reg("a_raw", p.a_raw);
  b_raw = reg("b_raw", p.b_raw);
  log_sigma2 = reg("log_sigma2", p.log_sigma2);
  bias = reg("bias", p.bias);
  log_tau = reg("log_tau", p.log_tau);
  log_gamma = reg("log_gamma", p.log_gamma);
}

bayes::MatrixNormalParams MatrixNormalLinearImpl::params() const {
  return {mean, a_raw, b_raw, log_sigma2, bias, log_tau, log_gamma};
}

torch::Tensor MatrixNormalLinearImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK_VALUE(input.dim() >= 1 && input.size(-1) == options.in_features(),
                    "mantra::nn::MatrixNormalLinear: argument 'input' must be (..., ", options.in_features(),
                    "), got shape ", input.sizes());
  const auto lead = input.sizes().slice(0, input.dim() - 1).vec();
  const torch::Tensor X = input.reshape({-1, options.in_features()});
  const bayes::MatrixNormalParams p = params();
  torch::Tensor out;
  if (is_training() || SampleInEval::active()) {
    out = bayes::sampled_forward(X, p, options.posterior(), options.sampling(), generator_);
  } else if (options.eval_samples() > 0) {
    out = bayes::sampled_forward(X, p, options.posterior(), options.sampling(), generator_);
    for (int64_t k = 1; k < options.eval_samples(); ++k)
      out = out + bayes::sampled_forward(X, p, options.posterior(), options.sampling(), generator_);
    out = out / static_cast<double>(options.eval_samples());
  } else {
    std::optional<torch::Tensor> m;
    if (options.threshold().has_value()) m = mask(*options.threshold());
    out = bayes::mean_forward(X, p, m);
  }
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
    if (auto* layer = dynamic_cast<MatrixNormalLinearImpl*>(&m)) {
      torch::Tensor k = layer->kl();
      total = total.defined() ? total + k : k;
    }
  };
  add(module);
  for (const auto& child : module.modules(/*include_self=*/false)) add(*child);
  return total.defined() ? total : torch::zeros({});
}

}  // namespace mantra::nn
